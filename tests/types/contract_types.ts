/**
 * Compile-time checks of the plugin contract, run by `tsc` (make check / make test): each
 * `@ts-expect-error` line must fail to type-check, or the build fails.
 */
import type { Address, AnyPluginModule, Hooks, Init, PluginModule, Transaction } from "qpsmtpd";
import { DECLINED, DENY, type HookContext, OK } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    contract_score: number;
  }
}

// A correct module type-checks.
export const good: PluginModule = {
  hook_rcpt(this: HookContext, _txn: Transaction, rcpt: Address) {
    return rcpt.user === "x" ? [DENY, "no"] : OK;
  },
  hook_auth_cram_md5: async (_txn, mech, user) => (mech && user ? OK : undefined),
};

export const wrongArgument: PluginModule = {
  // @ts-expect-error the recipient is an Address, not a string
  hook_rcpt(this: HookContext, _txn: Transaction, rcpt: string) {
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

// Hooks outside a session have no session on `this`.
export const preConnection: Hooks["pre-connection"] = function (_txn, info) {
  // @ts-expect-error there is no session before the connection is accepted
  this.qp.config("x");
  return this.server.config_all("hosts_allow").includes(info.remote_ip) ? OK : DECLINED;
};

export const logging: Hooks["logging"] = function (_txn, _level, _hook, _plugin, message, connection) {
  // @ts-expect-error a logging hook runs for no connection
  this.connection.notes("x");
  return message && connection ? DECLINED : OK;
};

// Engine internals are not part of the session plugins see.
export const noInternals: Hooks["data"] = function () {
  // @ts-expect-error the session's input buffer is not public
  this.qp.input.clear();
  return DECLINED;
};

// `this.data` is typed per plugin.
interface Data {
  limit: number;
}
export const init: Init<Data> = function (_server, limit = "3") {
  this.data.limit = Number(limit);
  // @ts-expect-error data fields keep their declared types
  this.data.limit = "three";
};
export const limited: Hooks<Data>["rcpt"] = function (txn) {
  return txn.recipients().length >= this.data.limit ? DENY : DECLINED;
};

// Notes are typed by declaration merging; undeclared keys are unknown.
export const notes: Hooks["connect"] = function () {
  this.connection.notes("contract_score", 3);
  // @ts-expect-error a declared note keeps its type
  this.connection.notes("contract_score", "three");
  const karma: number | undefined = this.connection.notes("karma");
  const other: unknown = this.connection.notes("never_declared");
  return karma === undefined && other === undefined ? DECLINED : OK;
};

// A module with typed data fits a list of modules.
export const listed: AnyPluginModule = { init, hook_rcpt: limited };

// An async hook that only ever declines is valid (the codes do not widen to number).
export const asyncDeclined: Hooks["connect"] = async () => DECLINED;
