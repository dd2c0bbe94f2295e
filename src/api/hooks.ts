/**
 * The closed list of qpsmtpd hooks, the arguments each receives, what each may return, and the
 * shape of a plugin module.
 * @module
 */
import type { Address } from "./address.ts";
import type { ReturnCode } from "./codes.ts";
import type { HookContext, PluginContext, PluginData } from "./context.ts";
import type { HookName, ServerHookName } from "./hook_names.ts";
import type { Server } from "./server.ts";
import type { Transaction } from "./transaction.ts";

/** ESMTP parameters of MAIL or RCPT: lower-cased keyword to value (undefined when there was no `=`). */
export type Params = Record<string, string | undefined>;

/** What a pre-connection hook learns about the new connection. */
export interface PreConnectionInfo {
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
  /** The `-m/--max-from-ip` limit (0 = none). */
  readonly max_conn_ip: number;
  /** Remote addresses of the connections open now. */
  readonly child_addrs: readonly string[];
}

/** A parser returned by a `*_parse` hook: `[OK, ...parts]` on success, `[DENY, message]` to refuse. */
export type LineParser = (cmd: string, line: string) => readonly [number, ...string[]];

/** Arguments after the transaction, per hook. */
export interface HookArgs {
  /** `connection_id` is the id of the connection that logged, "" for the server's own lines. */
  logging: [level: number, hook: string, plugin: string, message: string, connection_id: string];
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

type ParseAnswer = readonly [ReturnCode, LineParser] | ReturnCode | void | undefined;

/** What each hook may return (most return a Result, possibly through a promise). */
export interface HookResults {
  /** Config hooks answer synchronously, because `config()` is synchronous. */
  config: Result;
  user_config: Result;
  ehlo_parse: ParseAnswer | Promise<ParseAnswer>;
  helo_parse: ParseAnswer | Promise<ParseAnswer>;
  auth_parse: ParseAnswer | Promise<ParseAnswer>;
  rcpt_parse: ParseAnswer | Promise<ParseAnswer>;
  mail_parse: ParseAnswer | Promise<ParseAnswer>;
}

export type HookResult<H extends HookName> = H extends keyof HookResults ? HookResults[H]
  : Result | Promise<Result>;

/** `this` of hook `H`: hooks outside a session get a context without `qp`. */
export type ContextOf<H extends HookName, D extends object = PluginData> = H extends ServerHookName ? PluginContext<D>
  : HookContext<D>;

/** The function type of hook `H` for a plugin whose `this.data` is `D`. */
export type HookFn<H extends HookName, D extends object = PluginData> = (
  this: ContextOf<H, D>,
  transaction: Transaction,
  ...args: HookArgs[H]
) => HookResult<H>;

/**
 * Typed hook signatures: `export const hook_rcpt: Hooks["rcpt"] = async function (txn, rcpt) {…}`.
 * `Hooks<D>` types `this.data` as `D`.
 */
export type Hooks<D extends object = PluginData> = { [H in HookName]: HookFn<H, D> };

/** `this` in `init` and `register`. */
export interface LoadContext<D extends object = PluginData> extends PluginContext<Partial<D>> {
  /** Registers `fn` for `hook`; `unshift` puts it first in the chain. */
  register_hook<H extends HookName>(hook: H, fn: HookFn<H, D>, unshift?: boolean): void;
  /**
   * For a logging plugin: it keeps lines at `level` or more urgent and declines the rest. Its
   * `hook_logging` then gets only those, and a line no logging plugin keeps is not even made.
   */
  logs_up_to(level: number): void;
}

/**
 * `init(server, ...args)` and `register(server, ...args)`: run once per `config/plugins` line
 * when the plugins load, with that line's arguments. `this.data` is filled here.
 */
export type Init<D extends object = PluginData> = (
  this: LoadContext<D>,
  server: Server,
  ...args: string[]
) => void | Promise<void>;
export type Register<D extends object = PluginData> = Init<D>;

/**
 * `check(server)`: run by `qpsmtpd check` after the plugins loaded, never by the daemon. It
 * returns warnings for the admin (a backend that does not answer, a file that is missing); a
 * throw or a timeout is reported as a warning too.
 */
export type Check<D extends object = PluginData> = (
  this: PluginContext<D>,
  server: Server,
) => readonly string[] | Promise<readonly string[]>;

type Underscore<S extends string> = S extends `${infer A}-${infer B}` ? Underscore<`${A}_${B}`> : S;
type MethodName<H extends string> = `hook_${Underscore<H>}`;

/** The shape of a plugin module: hook functions plus optional init and register. */
export type PluginModule<D extends object = PluginData> =
  & { readonly [H in HookName as MethodName<H>]?: HookFn<H, D> }
  & {
    readonly init?: Init<D>;
    readonly register?: Register<D>;
    readonly check?: Check<D>;
  };

/** A plugin module whatever its data type: for lists of modules (`never` fits every `D`). */
export type AnyPluginModule = PluginModule<never>;
