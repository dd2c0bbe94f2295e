/**
 * `"qpsmtpd"`: the whole public API for plugins, built-in or on disk. It imports nothing from the
 * engine; the engine implements these interfaces and hands plugins objects whose own state is
 * private.
 *
 * ```ts
 * import { DECLINED, DENY, type Hooks } from "qpsmtpd";
 * export const hook_rcpt: Hooks["rcpt"] = function (_txn, rcpt) {
 *   return rcpt.user === "bob" ? [DENY, "no mail for bob"] : DECLINED;
 * };
 * ```
 * @module
 */
export * from "./codes.ts";
export { Address, asciiDomain, isAddressLiteral, isDomain, isUtf8 } from "./address.ts";
export { type BodyType, type DsnNotify, type MailOptions, type RcptDsn, xtextDecode, xtextEncode } from "./esmtp.ts";
export { Header, headerMayHave } from "./header.ts";
export type { Connection } from "./connection.ts";
export type { Transaction } from "./transaction.ts";
export type { Session } from "./session.ts";
export type { Server } from "./server.ts";
export type { HookContext, PluginContext, PluginData } from "./context.ts";
export type { AddressNotes, ConnectionNotes, NoteValue, TransactionNotes } from "./notes.ts";
export {
  type AnyPluginModule,
  type AuthArgs,
  type Check,
  type ContextOf,
  type HookArgs,
  type HookFn,
  type HookResult,
  type Hooks,
  type Init,
  type LineParser,
  type LoadContext,
  type Params,
  type PluginModule,
  type PreConnectionInfo,
  type Register,
  type Result,
} from "./hooks.ts";
export { HOOK_NAMES, type HookName, type ServerHookName } from "./hook_names.ts";
export { DnsError, type DnsErrorCode, type MxRecord, nodeStyleResolve, type RecordType, type Resolver } from "./dns.ts";
export type { Store } from "./store.ts";
export type { TlsOptions } from "./tls.ts";
export { cidrContains, ipToBigInt, matchesClientEntry, normaliseIp, reverseIp, sameNet24 } from "./ip.ts";
export { type ListEntry, matchesAddress, parseEntry } from "./lists.ts";
export { parsePathArgument, type PathArgument } from "./path_argument.ts";
export { type ArgSpec, parsePluginArgs, type PluginArgs } from "./plugin_args.ts";
export { strftime } from "./strftime.ts";
export { linesOf } from "./lines.ts";
export { formatLogLine } from "./log_line.ts";
export { validate_password } from "./password.ts";
export {
  type BdatOptions,
  type ClientOptions,
  type ClientReply,
  type ClientTarget,
  type ClientTlsInfo,
  CrlfEncoder,
  DotStuffer,
  SmtpClient,
  type StartTlsOptions,
  withCrlf,
} from "./smtp_client.ts";
export { abortReason, type BackendTarget, backendTimeLimitMs, connectBackend, describeBackend, parseYesNo, writeAll } from "./backend.ts";
export { LineReader, type LineReaderOptions } from "./line_reader.ts";
export { MilterLink, type MilterOptions, type MilterPacket } from "./milter_link.ts";
export { VERSION } from "./version.ts";
