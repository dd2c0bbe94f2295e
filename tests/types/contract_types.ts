/**
 * Compile-time checks of the plugin contract, run by `tsc` (make check / make test): each
 * `@ts-expect-error` line must fail to type-check, or the build fails.
 */
import type { Address, Hooks, PluginModule, Transaction } from "qpsmtpd";
import { DECLINED, DENY, OK, type Plugin } from "qpsmtpd";

// A correct module type-checks.
export const good: PluginModule = {
  hook_rcpt(this: Plugin, _txn: Transaction, rcpt: Address) {
    return rcpt.user === "x" ? [DENY, "no"] : OK;
  },
  hook_auth_cram_md5: async (_txn, mech, user) => (mech && user ? OK : undefined),
};

export const wrongArgument: PluginModule = {
  // @ts-expect-error the recipient is an Address, not a string
  hook_rcpt(this: Plugin, _txn: Transaction, rcpt: string) {
    return rcpt ? OK : DENY;
  },
};

export const wrongReturn: PluginModule = {
  // @ts-expect-error a hook returns a code, not a bare string
  hook_mail: () => "OK",
};

export const badCode: PluginModule = {
  // @ts-expect-error 250 is an SMTP code, not a return code
  hook_mail: () => [250, "fine"],
};

// @ts-expect-error hook names are a closed list
export const unknownHook: PluginModule = { hook_recipient: () => OK };

// @ts-expect-error config hooks answer synchronously
export const asyncConfig: Hooks["config"] = async () => [OK, "value"];

export const typedThis: Hooks["helo"] = function (_txn, host) {
  // @ts-expect-error qp offers config(), not conf()
  this.qp.conf(host);
  return OK;
};

// An async hook that only ever declines is valid (the codes do not widen to number).
export const asyncDeclined: Hooks["connect"] = async () => DECLINED;
