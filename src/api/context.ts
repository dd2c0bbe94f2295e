/**
 * What `this` is in a plugin's functions. Every call gets a small context object: the plugin
 * instance's name, arguments and data, the server, and, for hooks that run for a connection,
 * the session, its connection and transaction.
 *
 * | function | `this` |
 * |---|---|
 * | `init`, `register` | `LoadContext<D>` (in hooks.ts: adds `register_hook`; `data` is being filled) |
 * | `hook_pre_connection`, `hook_logging`, `hook_post_fork` | `PluginContext<D>` (no session) |
 * | every other hook | `HookContext<D>` |
 * @module
 */
import type { ReturnCode } from "./codes.ts";
import type { Connection } from "./connection.ts";
import type { Resolver } from "./dns.ts";
import type { HookName } from "./hook_names.ts";
import type { Server } from "./server.ts";
import type { Session } from "./session.ts";
import type { Store } from "./store.ts";
import type { Transaction } from "./transaction.ts";

/** The default type of `this.data` for a plugin that does not declare one. */
export type PluginData = Record<string, unknown>;

export interface PluginContext<D extends object = PluginData> {
  /** The name as written in `config/plugins` (`relay`, `queue/maildir`, `relay:0`). */
  readonly name: string;
  /** The plugin file's name (`relay` for `relay:0`). */
  readonly file: string;
  /** The arguments from the `config/plugins` line. */
  readonly args: readonly string[];
  /** The arguments as key/value pairs (`reject 0 reject_type temp`). */
  readonly options: Readonly<Record<string, string>>;
  /** The instance's own state, shared by every connection; typed by `Hooks<D>`. */
  readonly data: D;
  readonly server: Server;
  /** The server's resolver (`this.server.dns`). */
  readonly dns: Resolver;
  /**
   * Aborted when the call's time limit (`plugin_timeout`, or the plugin's `timeout N`
   * argument) has passed; pass it on to anything that waits.
   */
  readonly signal: AbortSignal;
  /**
   * The engine's time limit for each call of this plugin, in ms: the plugin's `timeout N`
   * argument, else `plugin_timeout`, else 30 s; 0 when there is none. A plugin that waits on a
   * daemon keeps under it (`backendTimeLimitMs`) to answer with its own failure policy.
   */
  readonly timeLimitMs: number;
  /** qpsmtpd's escaped name, used in logs and as a notes key (`queue::maildir`, `relay_3a0`). */
  plugin_name(): string;
  /** The hook running now; undefined in init and register. */
  hook_name(): HookName | undefined;
  /** Logs through the logging plugins, shifted by the plugin's `loglevel` argument. */
  log(level: number, ...message: unknown[]): void;
  /** The key/value store: the shared Redis when `store` names one, else SQLite in the `db_dir` argument's directory, else as `server.store()`. */
  store(): Store;
}

/** `this` in a hook that runs for a connection. */
export interface HookContext<D extends object = PluginData> extends PluginContext<D> {
  /** The session (qpsmtpd's `$self->qp`). */
  readonly qp: Session;
  readonly connection: Connection;
  /** The current transaction, created if there is none. */
  readonly transaction: Transaction;
  /** Maps the `reject_type` argument (temp, perm, disconnect, temp_disconnect) to a code. */
  get_reject_type(fallback?: ReturnCode, override?: string): ReturnCode;
  /**
   * The standard `reject` argument: `0` logs and declines, `naughty` defers the rejection to the
   * naughty plugin, anything else refuses with `smtpMessage` and the `reject_type` code.
   */
  get_reject(smtpMessage?: string, logMessage?: string, defaultType?: ReturnCode): [ReturnCode, ...string[]];
  /** Defers a rejection to the naughty plugin (connection notes `naughty`, `naughty_reject_type`). */
  store_deferred_reject(message: string): void;
  /** Whether the client is exempt from policy: a relay client, or a whitelisted host or sender. */
  is_immune(): boolean;
  /** Gets, or sets, the connection's `naughty` note. */
  is_naughty(value?: string): string | undefined;
  /** Adds `n` to the connection's karma. */
  adjust_karma(n: number): void;
  /**
   * Adds a fragment to Authentication-Results: to the transaction once MAIL was given, else to
   * the connection (connect-time checks such as iprev).
   */
  store_auth_results(fragment: string): void;
}
