/**
 * One loaded plugin: a `config/plugins` line with its module, arguments, data, log level, time
 * limit and hook registrations. Engine-only; plugins see it through their call contexts.
 * @module
 */
import { parseLogLevel } from "../api/codes.ts";
import type { AnyPluginModule, HookFn } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { Server } from "../api/server.ts";
import type { ServerHost } from "./server_host.ts";

/** qpsmtpd's plugin_name(): characters outside `[A-Za-z0-9_/]` become `_XX`, `/` becomes `::`. */
export function escapePluginName(name: string): string {
  return name
    .split("/")
    .map((seg) => seg.replace(/[^A-Za-z0-9_]|^[0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`))
    .join("::");
}

/** The argument after the first `word` in `args`. */
function wordAfter(args: readonly string[], word: string): string | undefined {
  const i = args.indexOf(word);
  return i < 0 ? undefined : args[i + 1];
}

export interface Registration {
  readonly hook: HookName;
  readonly fn: HookFn<HookName>;
  readonly unshift: boolean;
}

export interface InstanceOptions {
  /** The name as written in config/plugins (`relay`, `queue/maildir`, `relay:0`). */
  readonly name: string;
  readonly args: readonly string[];
  readonly module: AnyPluginModule;
  readonly host: ServerHost;
  /** What the plugin sees as `server` (its registry's). */
  readonly server: Server;
  /** The time limit per call, ms, unless the line has a `timeout N` argument. */
  readonly timeoutMs: number;
}

export class PluginInstance {
  readonly name: string;
  /** The plugin file's name (`relay` for `relay:0`). */
  readonly file: string;
  readonly args: readonly string[];
  /** The arguments as key/value pairs. */
  readonly options: Readonly<Record<string, string>>;
  readonly module: AnyPluginModule;
  readonly host: ServerHost;
  readonly server: Server;
  /** The plugin's own state (`this.data`), shared by every connection. */
  readonly data: Record<string, unknown> = Object.create(null);
  /** qpsmtpd's escaped name, for logs and notes. */
  readonly escapedName: string;
  /** The time limit for each call, ms. */
  readonly timeoutMs: number;
  readonly registrations: Registration[] = [];
  /** A logging plugin's least urgent level (`logs_up_to`); undefined: it sees every line. */
  logsUpTo: number | undefined;
  readonly #loglevel: { absolute?: number; relative?: number } = {};

  constructor(opts: InstanceOptions) {
    this.name = opts.name;
    const [base, instance] = opts.name.split(":");
    this.file = base!;
    this.escapedName = escapePluginName(base!) + (instance === undefined ? "" : `_3a${instance}`);
    this.args = opts.args;
    this.module = opts.module;
    this.host = opts.host;
    this.server = opts.server;
    const options: Record<string, string> = Object.create(null);
    for (let i = 0; i + 1 < opts.args.length; i += 2) options[opts.args[i]!] = opts.args[i + 1]!;
    this.options = Object.freeze(options);
    // `timeout N` and `loglevel L` may follow any arguments, positional ones included.
    const timeout = wordAfter(opts.args, "timeout");
    this.timeoutMs = timeout !== undefined && /^\d+(\.\d+)?$/.test(timeout) ? Number(timeout) * 1000 : opts.timeoutMs;
    const lv = wordAfter(opts.args, "loglevel");
    if (lv !== undefined) {
      if (/^[+-]\d$/.test(lv)) this.#loglevel.relative = Number(lv);
      else {
        const n = parseLogLevel(lv);
        if (n !== undefined) this.#loglevel.absolute = n;
      }
    }
  }

  /** A log level shifted by the plugin's `loglevel` argument. */
  level(level: number): number {
    if (this.#loglevel.absolute !== undefined) return this.#loglevel.absolute;
    if (this.#loglevel.relative !== undefined) return Math.min(7, Math.max(0, level + this.#loglevel.relative));
    return level;
  }

  register<H extends HookName>(hook: H, fn: HookFn<H>, unshift = false): void {
    this.registrations.push({ hook, fn: fn as unknown as HookFn<HookName>, unshift });
  }
}
