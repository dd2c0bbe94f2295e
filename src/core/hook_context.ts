/**
 * `this` for a plugin's functions: one small object per call, carrying the plugin instance, the
 * hook and, for session hooks, the session. Its engine references are private, so a plugin
 * reaches only the public API.
 * @module
 */
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, LOGDEBUG, LOGINFO, type ReturnCode } from "../api/codes.ts";
import type { Connection } from "../api/connection.ts";
import type { HookContext, PluginContext } from "../api/context.ts";
import type { Resolver } from "../api/dns.ts";
import type { HookFn, LoadContext } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { Server } from "../api/server.ts";
import type { Session } from "../api/session.ts";
import type { Store } from "../api/store.ts";
import type { Transaction } from "../api/transaction.ts";
import type { PluginInstance } from "./plugin_instance.ts";

/** What a session hook's context needs from the engine's session. */
export interface HookSession {
  /** The session as plugins see it. */
  readonly api: Session;
  readonly connection: Connection;
  readonly transaction: Transaction;
  hasTransaction(): boolean;
  log(level: number, message: string, hook: string, plugin: string): void;
}

/** What only the hook runner does with a call: ends it. */
export interface CallControl {
  abort(call: ServerCall, reason: string): void;
}

let control!: CallControl;

/** `this` for init, register and the hooks that run outside a session. */
export class ServerCall implements PluginContext<Record<string, unknown>> {
  readonly #p: PluginInstance;
  readonly #hook: HookName | undefined;
  /** Where log lines go when the call is for a session (they carry its connection id). */
  readonly #session: HookSession | undefined;
  #abort: AbortController | undefined;

  constructor(plugin: PluginInstance, hook: HookName | undefined, session?: HookSession) {
    this.#p = plugin;
    this.#hook = hook;
    this.#session = session;
  }

  static {
    control = {
      abort(call, reason) {
        // Made here if the plugin has not asked for the signal yet, so a late look sees it aborted.
        (call.#abort ??= new AbortController()).abort(new Error(reason));
      },
    };
  }

  get name(): string {
    return this.#p.name;
  }

  get file(): string {
    return this.#p.file;
  }

  get args(): readonly string[] {
    return this.#p.args;
  }

  get options(): Readonly<Record<string, string>> {
    return this.#p.options;
  }

  get data(): Record<string, unknown> {
    return this.#p.data;
  }

  get server(): Server {
    return this.#p.server;
  }

  get dns(): Resolver {
    return this.#p.host.resolver;
  }

  get timeLimitMs(): number {
    return this.#p.timeoutMs;
  }

  get signal(): AbortSignal {
    return (this.#abort ??= new AbortController()).signal;
  }

  plugin_name(): string {
    return this.#p.escapedName;
  }

  hook_name(): HookName | undefined {
    return this.#hook;
  }

  log(level: number, ...message: unknown[]): void {
    const lv = this.#p.level(level);
    if (!this.#p.host.logger.wants(lv)) return;
    const only = message.length === 1 ? message[0] : undefined;
    const text = typeof only === "string" ? only : message.map(String).join(" ");
    if (this.#session) this.#session.log(lv, text, this.#hook ?? "", this.#p.escapedName);
    else this.#p.host.log(lv, text, this.#hook ?? "", this.#p.escapedName);
  }

  store(): Store {
    return this.#p.host.store(this.#p.options["db_dir"]);
  }
}

/** `this` in init and register. */
export class LoadCall extends ServerCall implements LoadContext<Record<string, unknown>> {
  readonly #p: PluginInstance;

  constructor(plugin: PluginInstance) {
    super(plugin, undefined);
    this.#p = plugin;
  }

  register_hook<H extends HookName>(hook: H, fn: HookFn<H, Record<string, unknown>>, unshift = false): void {
    this.#p.register(hook, fn, unshift);
  }

  logs_up_to(level: number): void {
    this.#p.logsUpTo = level;
  }
}

/** `this` in a hook that runs for a connection. */
export class SessionCall extends ServerCall implements HookContext<Record<string, unknown>> {
  readonly #s: HookSession;

  constructor(plugin: PluginInstance, hook: HookName, session: HookSession) {
    super(plugin, hook, session);
    this.#s = session;
  }

  get qp(): Session {
    return this.#s.api;
  }

  get connection(): Connection {
    return this.#s.connection;
  }

  get transaction(): Transaction {
    return this.#s.transaction;
  }

  get_reject_type(fallback: ReturnCode = DENY, override?: string): ReturnCode {
    switch (override || this.options["reject_type"]) {
      case "temp":
      case "soft":
        return DENYSOFT;
      case "perm":
      case "hard":
        return DENY;
      case "disconnect":
        return DENY_DISCONNECT;
      case "temp_disconnect":
        return DENYSOFT_DISCONNECT;
      default:
        return fallback;
    }
  }

  get_reject(smtpMessage = "", logMessage = "", defaultType: ReturnCode = DENY): [ReturnCode, ...string[]] {
    const reject = this.options["reject"];
    const msg = smtpMessage || "rejected";
    const detail = logMessage ? `, ${logMessage}` : "";
    if (reject === "0") {
      this.log(LOGINFO, `fail, tolerated${detail}`);
      return [DECLINED];
    }
    if (reject === "naughty") {
      this.log(LOGINFO, `fail, NAUGHTY${detail}`);
      this.store_deferred_reject(msg);
      return [DECLINED];
    }
    this.log(LOGINFO, `fail${detail}`);
    return [this.get_reject_type(defaultType), msg];
  }

  store_deferred_reject(message: string): void {
    const c = this.connection;
    const prev = c.notes("naughty");
    if (!c.notes("naughty_reject_type")) c.notes("naughty_reject_type", this.options["reject_type"] ?? "");
    const line = `(${this.plugin_name()}) ${message}`;
    c.notes("naughty", prev ? `${prev}\r\n${line}` : line);
  }

  is_immune(): boolean {
    const c = this.connection;
    if (c.relay_client()) {
      this.log(LOGDEBUG, "skip, relay client");
      return true;
    }
    if (c.notes("whitelisthost")) {
      this.log(LOGDEBUG, "skip, whitelisted host");
      return true;
    }
    if (this.#s.hasTransaction() && this.transaction.notes("whitelistsender")) {
      this.log(LOGDEBUG, "skip, whitelisted sender");
      return true;
    }
    return false;
  }

  is_naughty(value?: string): string | undefined {
    if (value !== undefined) this.connection.notes("naughty", value);
    return this.connection.notes("naughty");
  }

  adjust_karma(n: number): void {
    const c = this.connection;
    c.notes("karma", (c.notes("karma") ?? 0) + n);
  }

  store_auth_results(fragment: string): void {
    if (this.#s.hasTransaction() && this.transaction.sender()) {
      const t = this.transaction;
      const prev = t.notes("authentication_results");
      t.notes("authentication_results", prev ? `${prev}; ${fragment}` : fragment);
    } else {
      const c = this.connection;
      const prev = c.notes("authentication_results");
      c.notes("authentication_results", prev ? `${prev}; ${fragment}` : fragment);
    }
  }
}

export const callControl: CallControl = control;
