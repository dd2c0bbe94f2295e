/**
 * The plugin instance: one per `config/plugins` line. Hooks run with `this` bound to a
 * per-connection view of it, so `this.qp` is the session the hook runs for even when many
 * connections run hooks at once.
 * @module
 */
import {
  DECLINED,
  DENY,
  DENY_DISCONNECT,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  LOGDEBUG,
  LOGINFO,
  parseLogLevel,
  type ReturnCode,
} from "../core/codes.ts";
import type { HookFn, HookName, PluginModule } from "../core/hooks.ts";
import type { Connection } from "../core/connection.ts";
import type { Transaction } from "../core/transaction.ts";
import type { SessionApi } from "../core/session_api.ts";
import type { PluginHost } from "./host.ts";

/** qpsmtpd's plugin_name(): characters outside `[A-Za-z0-9_/]` become `_XX`, `/` becomes `::`. */
export function escapePluginName(name: string): string {
  return name
    .split("/")
    .map((seg) =>
      seg.replace(/[^A-Za-z0-9_]|^[0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    )
    .join("::");
}

export interface Registration {
  readonly hook: HookName;
  readonly fn: HookFn<HookName>;
  readonly unshift: boolean;
}

export class Plugin {
  /** The name as written in config/plugins (`relay`, `queue/maildir`, `relay:0`). */
  readonly name: string;
  /** The plugin file's name (`relay` for `relay:0`). */
  readonly file: string;
  /** The arguments from the config/plugins line. */
  readonly args: readonly string[];
  readonly module: PluginModule;
  readonly host: PluginHost;
  /** The session this view runs for; undefined in init, register and pre-connection. */
  qp!: SessionApi;
  /** Name of the hook running now. */
  _hook: HookName | undefined;
  readonly _registrations: Registration[] = [];
  readonly _loglevel: { absolute?: number; relative?: number } = {};
  /** Anything a plugin keeps on itself; a plain object without a prototype. */
  readonly data: Record<string, unknown> = Object.create(null);

  readonly _escapedName: string;

  constructor(name: string, file: string, args: readonly string[], module: PluginModule, host: PluginHost) {
    this.name = name;
    const [base, inst] = name.split(":");
    this._escapedName = escapePluginName(base!) + (inst === undefined ? "" : `_3a${inst}`);
    this.file = file;
    this.args = args;
    this.module = module;
    this.host = host;
    const i = args.indexOf("loglevel");
    const lv = i >= 0 ? args[i + 1] : undefined;
    if (lv !== undefined) {
      if (/^[+-]\d$/.test(lv)) this._loglevel.relative = Number(lv);
      else {
        const n = parseLogLevel(lv);
        if (n !== undefined) this._loglevel.absolute = n;
      }
    }
  }

  /** qpsmtpd's escaped name, used in logs and as the notes key. */
  plugin_name(): string {
    return this._escapedName;
  }

  hook_name(): HookName | undefined {
    return this._hook;
  }

  /** Logs through the logging hooks, with the level shifted by the plugin's `loglevel` argument. */
  log(level: number, ...msg: unknown[]): void {
    let lv = level;
    if (this._loglevel.absolute !== undefined) lv = this._loglevel.absolute;
    else if (this._loglevel.relative !== undefined) lv = Math.min(7, Math.max(0, level + this._loglevel.relative));
    if (!this.host.logger.wants(lv)) return;
    const text = msg.map(String).join(" ");
    if (this.qp) this.qp.log(lv, text, this._hook ?? "", this.plugin_name());
    else this.host.log(lv, text, this._hook ?? "", this.plugin_name());
  }

  /** Registers `fn` for `hook`; `unshift` puts it first in the chain. */
  register_hook<H extends HookName>(hook: H, fn: HookFn<H>, unshift = false): void {
    this._registrations.push({ hook, fn: fn as unknown as HookFn<HookName>, unshift });
  }

  /** The plugin's arguments as key/value pairs (`reject 0 reject_type temp`). */
  get options(): Record<string, string> {
    const o: Record<string, string> = Object.create(null);
    for (let i = 0; i + 1 < this.args.length; i += 2) o[this.args[i]!] = this.args[i + 1]!;
    return o;
  }

  get connection(): Connection {
    return this.qp.connection;
  }

  get transaction(): Transaction {
    return this.qp.transaction;
  }

  /** Maps `reject_type` (temp, perm, disconnect, temp_disconnect) to a code. */
  get_reject_type(fallback: ReturnCode = DENY, override?: string): ReturnCode {
    const t = override || this.options["reject_type"];
    switch (t) {
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

  /** Implements the standard `reject` argument: 0 logs only, `naughty` defers, otherwise rejects. */
  get_reject(smtpMsg = "", logMsg = "", defaultType: ReturnCode = DENY): [ReturnCode, ...string[]] {
    const reject = this.options["reject"];
    const msg = smtpMsg || "rejected";
    if (reject === "0") {
      this.log(LOGINFO, `fail, tolerated${logMsg ? `, ${logMsg}` : ""}`);
      return [DECLINED];
    }
    if (reject === "naughty") {
      this.log(LOGINFO, `fail, NAUGHTY${logMsg ? `, ${logMsg}` : ""}`);
      this.store_deferred_reject(msg);
      return [DECLINED];
    }
    this.log(LOGINFO, `fail${logMsg ? `, ${logMsg}` : ""}`);
    return [this.get_reject_type(defaultType), msg];
  }

  /** Defers a rejection to the naughty plugin (connection notes `naughty` and `naughty_reject_type`). */
  store_deferred_reject(msg: string): void {
    const c = this.connection;
    const prev = c.notes("naughty");
    if (!c.notes("naughty_reject_type")) c.notes("naughty_reject_type", this.options["reject_type"] ?? "");
    const line = `(${this.plugin_name()}) ${msg}`;
    c.notes("naughty", typeof prev === "string" && prev ? `${prev}\r\n${line}` : line);
  }

  /** Whether the client is exempt from policy: a relay client or a whitelisted host or sender. */
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
    if (this.qp.has_transaction() && this.transaction.notes("whitelistsender")) {
      this.log(LOGDEBUG, "skip, whitelisted sender");
      return true;
    }
    return false;
  }

  /** Gets, or sets, the connection's naughty note. */
  is_naughty(value?: string): unknown {
    if (value !== undefined) this.connection.notes("naughty", value);
    return this.connection.notes("naughty");
  }

  adjust_karma(n: number): void {
    const c = this.connection;
    c.notes("karma", (Number(c.notes("karma")) || 0) + n);
  }

  /** qpsmtpd's resolver helpers, on the server's shared resolver. */
  resolve_a(name: string): Promise<string[]> {
    return this.host.resolver.resolve_a(name);
  }

  resolve_aaaa(name: string): Promise<string[]> {
    return this.host.resolver.resolve_aaaa(name);
  }

  resolve_mx(name: string): Promise<Array<{ exchange: string; priority: number }>> {
    return this.host.resolver.resolve_mx(name);
  }

  resolve_txt(name: string): Promise<string[]> {
    return this.host.resolver.resolve_txt(name);
  }

  resolve_ns(name: string): Promise<string[]> {
    return this.host.resolver.resolve_ns(name);
  }

  resolve_ptr(ip: string): Promise<string[]> {
    return this.host.resolver.resolve_ptr(ip);
  }

  /**
   * Adds a fragment to Authentication-Results: to the transaction once MAIL has been given,
   * else to the connection (connect-time checks such as iprev). Transaction fragments die with
   * the transaction, so they never pile up across messages (qpsmtpd #320).
   */
  store_auth_results(fragment: string): void {
    const target = this.qp.has_transaction() && this.transaction.sender() ? this.transaction : this.connection;
    const prev = target.notes("authentication_results");
    target.notes("authentication_results", typeof prev === "string" && prev ? `${prev}; ${fragment}` : fragment);
  }
}
