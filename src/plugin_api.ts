/**
 * The `qpsmtpd` module that plugins import: return codes, log levels, the plugin and data
 * classes, and the hook types.
 *
 * ```ts
 * import { DENY, DECLINED, type Hooks } from "qpsmtpd";
 * export const hook_rcpt: Hooks["rcpt"] = async function (txn, rcpt) {
 *   return rcpt.user === "bob" ? [DENY, "no mail for bob"] : DECLINED;
 * };
 * ```
 * @module
 */
export * from "./core/codes.ts";
export { Address } from "./smtp/address.ts";
export type { Params } from "./smtp/command.ts";
export { Connection } from "./core/connection.ts";
export { Transaction } from "./core/transaction.ts";
export { Header } from "./core/header.ts";
export { Plugin } from "./plugin/plugin.ts";
export type { PluginHost } from "./plugin/host.ts";
export type { SessionApi } from "./core/session_api.ts";
export { validate_password } from "./core/auth.ts";
export type {
  AuthArgs,
  HookArgs,
  HookFn,
  HookName,
  Hooks,
  HookResult,
  LineParser,
  PluginModule,
  PreConnectionInfo,
  Result,
} from "./core/hooks.ts";
export { HOOK_NAMES } from "./core/hooks.ts";
export { VERSION } from "./version.ts";
