/**
 * The closed list of qpsmtpd's hook names, and the method name a plugin exports for each.
 * @module
 */

/** qpsmtpd's 39 hook names, in qpsmtpd's registration order. */
export const HOOK_NAMES = [
  "logging",
  "config",
  "user_config",
  "post-fork",
  "pre-connection",
  "connect",
  "ehlo_parse",
  "ehlo",
  "helo_parse",
  "helo",
  "auth_parse",
  "auth",
  "auth-plain",
  "auth-login",
  "auth-cram-md5",
  "rcpt_parse",
  "rcpt_pre",
  "rcpt",
  "mail_parse",
  "mail",
  "mail_pre",
  "data",
  "data_headers_end",
  "data_post_headers",
  "data_post",
  "queue_pre",
  "queue",
  "queue_post",
  "vrfy",
  "noop",
  "quit",
  "reset_transaction",
  "disconnect",
  "post-connection",
  "unrecognized_command",
  "deny",
  "ok",
  "received_line",
  "help",
] as const;

export type HookName = (typeof HOOK_NAMES)[number];

/** Hooks that run outside any session: their `this` has no `qp`, `connection` or `transaction`. */
export type ServerHookName = "logging" | "pre-connection" | "post-fork";

const HOOK_SET: ReadonlySet<string> = new Set(HOOK_NAMES);
export function isHookName(s: string): s is HookName {
  return HOOK_SET.has(s);
}

/** `auth-cram-md5` → `hook_auth_cram_md5`. */
export function hookMethodName(hook: HookName): `hook_${string}` {
  return `hook_${hook.replace(/\W/g, "_")}`;
}
