/**
 * The closed list of qpsmtpd hooks, the arguments each receives and what each may return.
 * @module
 */
import type { Address } from "../smtp/address.ts";
import type { Params } from "../smtp/command.ts";
import type { ReturnCode } from "./codes.ts";
import type { Transaction } from "./transaction.ts";
import type { Plugin } from "../plugin/plugin.ts";
import type { PluginHost } from "../plugin/host.ts";

/** qpsmtpd's 39 hook names, in qpsmtpd's registration order. */
export const HOOK_NAMES = [
  "logging", "config", "user_config", "post-fork", "pre-connection", "connect", "ehlo_parse", "ehlo",
  "helo_parse", "helo", "auth_parse", "auth", "auth-plain", "auth-login", "auth-cram-md5", "rcpt_parse",
  "rcpt_pre", "rcpt", "mail_parse", "mail", "mail_pre", "data", "data_headers_end", "data_post_headers",
  "data_post", "queue_pre", "queue", "queue_post", "vrfy", "noop", "quit", "reset_transaction", "disconnect",
  "post-connection", "unrecognized_command", "deny", "ok", "received_line", "help",
] as const;

export type HookName = (typeof HOOK_NAMES)[number];

const HOOK_SET: ReadonlySet<string> = new Set(HOOK_NAMES);
export function isHookName(s: string): s is HookName {
  return HOOK_SET.has(s);
}

/** `auth-cram-md5` → `hook_auth_cram_md5`. */
export function hookMethodName(hook: HookName): `hook_${string}` {
  return `hook_${hook.replace(/\W/g, "_")}`;
}
const BY_METHOD: ReadonlyMap<string, HookName> = new Map(HOOK_NAMES.map((h) => [hookMethodName(h), h]));
/** `hook_auth_cram_md5` → `auth-cram-md5`; undefined for any other name. */
export function hookFromMethodName(method: string): HookName | undefined {
  return BY_METHOD.get(method);
}

/** What a pre-connection hook learns about the new connection. */
export interface PreConnectionInfo {
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
  /** The `-m/--max-from-ip` limit (0 = none). */
  readonly max_conn_ip: number;
  /** Remote IPs of the connections open now. */
  readonly child_addrs: readonly string[];
}

/** A parser returned by a `*_parse` hook: `[OK, ...parts]` on success. */
export type LineParser = (cmd: string, line: string) => readonly [number, ...string[]];

/** Arguments after the transaction, per hook. */
export interface HookArgs {
  logging: [level: number, hook: string, plugin: string, message: string];
  config: [name: string];
  user_config: [address: Address, name: string];
  "post-fork": [];
  "pre-connection": [info: PreConnectionInfo];
  connect: [];
  ehlo_parse: [line: string];
  ehlo: [host: string, ...extra: string[]];
  helo_parse: [line: string];
  helo: [host: string, ...extra: string[]];
  auth_parse: [line: string];
  auth: AuthArgs;
  "auth-plain": AuthArgs;
  "auth-login": AuthArgs;
  "auth-cram-md5": AuthArgs;
  rcpt_parse: [line: string];
  rcpt_pre: [address: string, params: Params];
  rcpt: [recipient: Address, params: Params];
  mail_parse: [line: string];
  mail: [sender: Address, params: Params];
  mail_pre: [address: string, params: Params];
  data: [];
  data_headers_end: [];
  data_post_headers: [];
  data_post: [];
  queue_pre: [];
  queue: [];
  queue_post: [];
  vrfy: [];
  noop: [...args: string[]];
  quit: [];
  reset_transaction: [];
  disconnect: [];
  "post-connection": [];
  unrecognized_command: [command: string, rest: string];
  deny: [plugin: string, code: number, message: readonly string[]];
  ok: [plugin: string, code: number, message: readonly string[]];
  received_line: [protocol: string, authHeader: string, sslHeader: string];
  help: [...args: string[]];
}

/** mechanism, user, clear-text password, hashed response (CRAM-MD5), ticket (CRAM-MD5 challenge). */
export type AuthArgs = [
  mechanism: string,
  user: string,
  passClear: string | undefined,
  passHash: string | undefined,
  ticket: string | undefined,
];

/** A hook's answer: a code, or a code and reply lines. Nothing means DECLINED. */
export type Result = ReturnCode | readonly [ReturnCode, ...string[]] | void | undefined;

/** What each hook may return (most return a Result, possibly through a promise). */
export interface HookResults {
  /** Config hooks answer synchronously, because `config()` is synchronous. */
  config: ReturnCode | readonly [ReturnCode, ...string[]] | void | undefined;
  user_config: ReturnCode | readonly [ReturnCode, ...string[]] | void | undefined;
  ehlo_parse: ParseResult;
  helo_parse: ParseResult;
  auth_parse: ParseResult;
  rcpt_parse: ParseResult;
  mail_parse: ParseResult;
}
type ParseResult = readonly [ReturnCode, LineParser] | ReturnCode | void | undefined | Promise<
  readonly [ReturnCode, LineParser] | ReturnCode | void | undefined
>;

export type HookResult<H extends HookName> = H extends keyof HookResults ? HookResults[H]
  : Result | Promise<Result>;

/** The function type of hook `H`, with `this` bound to the plugin instance. */
export type HookFn<H extends HookName> = (
  this: Plugin,
  transaction: Transaction,
  ...args: HookArgs[H]
) => HookResult<H>;

/** Typed hook signatures, for `export const hook_rcpt: Hooks["rcpt"] = async function (txn, rcpt) {…}`. */
export type Hooks = { [H in HookName]: HookFn<H> };

type Underscore<S extends string> = S extends `${infer A}-${infer B}` ? Underscore<`${A}_${B}`> : S;
type MethodName<H extends string> = `hook_${Underscore<H>}`;

/** The shape of a plugin module: hook functions plus optional init and register. */
export type PluginModule =
  & { readonly [H in HookName as MethodName<H>]?: HookFn<H> }
  & {
    readonly init?: (this: Plugin, qp: PluginHost, ...args: string[]) => unknown;
    readonly register?: (this: Plugin, qp: PluginHost, ...args: string[]) => unknown;
  };
