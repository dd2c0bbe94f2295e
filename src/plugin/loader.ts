/**
 * Loads `config/logging` and `config/plugins`: resolves each name through `plugin_dirs` (a
 * `<dir>/<name>.ts` file), then the built-ins, then qpsmtpd's old names (aliases.ts), imports
 * it, checks its exports against the hook list, and runs init, the automatic `hook_*`
 * registration and register, in file order. Every problem stops the load with an error naming
 * the file and line; `qpsmtpd check` instead collects them all (`keepGoing`).
 * @module
 */
import * as fs from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type AnyPluginModule } from "../api/hooks.ts";
import { HOOK_NAMES, hookMethodName, type HookName, isHookName } from "../api/hook_names.ts";
import { ConfigError } from "../config/errors.ts";
import type { ConfigDir, ConfigLine } from "../config/files.ts";
import { callControl, LoadCall } from "../core/hook_context.ts";
import { PluginInstance } from "../core/plugin_instance.ts";
import { Registry } from "../core/registry.ts";
import type { ServerHost } from "../core/server_host.ts";
import { ALIASES, UNSUPPORTED, unsupportedMessage } from "./aliases.ts";
import { PluginLoadError } from "./errors.ts";

export interface LoadOptions {
  readonly host: ServerHost;
  /** The built-ins by name, each imported when a config names it. */
  readonly builtins: Readonly<Record<string, () => Promise<AnyPluginModule>>>;
  /** Where plugins are looked for when `plugin_dirs` is not set. */
  readonly defaultPluginDirs: readonly string[];
  /** Changes on every reload so that edited disk plugins are imported afresh. */
  readonly generation?: number;
  /** Told about every line: what it resolved to, or why it failed (`qpsmtpd check`). */
  readonly report?: (line: LineReport) => void;
  /** Skip a line that fails instead of stopping (its error still goes to `report`). */
  readonly keepGoing?: boolean;
}

/** What a plugin name resolved to. */
export type Resolution =
  | { readonly kind: "disk"; readonly path: string }
  | { readonly kind: "builtin" }
  | { readonly kind: "alias"; readonly of: string; readonly args: readonly string[]; readonly target: Resolution; readonly note?: string };

/** One `logging` or `plugins` line as the loader saw it. */
export interface LineReport {
  readonly line: ConfigLine;
  /** The name as written, `:N` included (empty when the line could not be read). */
  readonly name: string;
  readonly resolution?: Resolution;
  /** Why the line did not load. */
  readonly error?: string;
  /** The instance, when it loaded. */
  readonly plugin?: PluginInstance;
}

/** The time limit of a plugin call when neither `plugin_timeout` nor a `timeout N` argument says. */
export const DEFAULT_PLUGIN_TIMEOUT = 30;

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_\-./]*(?::\d+)?$/;
const METHODS: ReadonlyMap<string, HookName> = new Map(HOOK_NAMES.map((h) => [hookMethodName(h), h]));

/** The directories searched for disk plugins: `plugin_dirs` (relative to its own file) or the default. */
export function pluginDirs(config: ConfigDir, fallback: readonly string[]): string[] {
  const lines = config.lines("plugin_dirs");
  if (lines.length === 0) return [...fallback];
  return lines.map((l) => (isAbsolute(l.value) ? l.value : resolve(dirname(l.file), l.value)));
}

/** `plugin_timeout`: seconds a plugin call may take (0 = no limit). */
export function pluginTimeout(config: ConfigDir): number {
  const l = config.lines("plugin_timeout")[0];
  if (!l) return DEFAULT_PLUGIN_TIMEOUT;
  if (!/^\d+(\.\d+)?$/.test(l.value)) throw new ConfigError(l.file, l.line, `plugin_timeout must be a number of seconds, not "${l.value}"`);
  return Number(l.value);
}

export async function loadRegistry(opts: LoadOptions): Promise<Registry> {
  const { host } = opts;
  const registry = new Registry(host);
  const dirs = pluginDirs(host.configDir, opts.defaultPluginDirs);
  const timeoutMs = pluginTimeout(host.configDir) * 1000;
  for (const file of ["logging", "plugins"]) {
    for (const line of host.configDir.lines(file)) {
      let plugin: PluginInstance;
      try {
        plugin = await loadOne(line, dirs, opts, registry, timeoutMs);
      } catch (e) {
        if (!(e instanceof PluginLoadError) || !opts.keepGoing) throw e;
        continue; // loadOne has reported it
      }
      registry.add(plugin);
    }
  }
  return registry;
}

async function loadOne(
  line: ConfigLine,
  dirs: readonly string[],
  opts: LoadOptions,
  registry: Registry,
  timeoutMs: number,
): Promise<PluginInstance> {
  const where = `${line.file}:${line.line}`;
  const [name = "", ...written] = line.value.split(/\s+/);
  const seen: { resolution?: Resolution } = {}; // known once the name resolved
  const fail = (message: string, cause?: unknown): never => {
    opts.report?.({ line, name, ...seen, error: message });
    throw new PluginLoadError(message, { cause });
  };
  if (!/^[\x20-\x7e]+$/.test(line.value)) fail(`${where}: the line has non-printable characters`);
  if (name.includes("::")) fail(`${where}: "${name}" is a Perl module plugin; only TypeScript plugins load`);
  if (!name || !NAME.test(name) || name.includes("..")) fail(`${where}: bad plugin name "${name}"`);
  const file = name.replace(/:\d+$/, "");
  let mod: Resolved;
  try {
    mod = await resolveModule(file, written, dirs, opts, where);
  } catch (e) {
    return fail((e as Error).message, e);
  }
  seen.resolution = mod.resolution;
  const args = mod.args;
  const plugin = new PluginInstance({ name, args, module: mod.module, host: opts.host, server: registry.server, timeoutMs });
  for (const key of Object.keys(mod.module)) {
    if (key.startsWith("hook_") && !METHODS.has(key)) {
      fail(`${where}: plugin ${name} (${mod.source}) exports ${key}, which is not a qpsmtpd hook`);
    }
  }
  try {
    await runLoadStep(plugin, "init", mod.module.init);
    for (const hook of HOOK_NAMES) {
      const fn = (mod.module as Record<string, unknown>)[hookMethodName(hook)];
      if (fn === undefined) continue;
      if (typeof fn !== "function") throw new Error(`${hookMethodName(hook)} is not a function`);
      plugin.register(hook, fn as never);
    }
    await runLoadStep(plugin, "register", mod.module.register);
  } catch (e) {
    fail(`${where}: plugin ${name} failed to load: ${(e as Error).message}`, e);
  }
  for (const r of plugin.registrations) {
    if (!isHookName(r.hook)) fail(`${where}: plugin ${name} registered unknown hook "${r.hook}"`);
    if (typeof r.fn !== "function") fail(`${where}: plugin ${name} registered a ${typeof r.fn} for ${r.hook}`);
  }
  opts.report?.({ line, name, resolution: mod.resolution, plugin });
  return plugin;
}

/** Runs init or register with the plugin's time limit: a plugin that hangs there stops the load. */
async function runLoadStep(plugin: PluginInstance, step: "init" | "register", fn: AnyPluginModule["init"]): Promise<void> {
  if (typeof fn !== "function") return;
  const ctx = new LoadCall(plugin);
  const work = fn.call(ctx as never, plugin.server, ...plugin.args);
  if (!(work instanceof Promise) || plugin.timeoutMs <= 0) return await work;
  let timer: { cancel(): void } | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = plugin.host.clock.after(plugin.timeoutMs, () => {
      const why = `${step} did not finish within ${plugin.timeoutMs / 1000}s`;
      callControl.abort(ctx, why);
      reject(new Error(why));
    });
  });
  try {
    await Promise.race([work, late]);
  } finally {
    timer?.cancel();
  }
}

interface Resolved {
  readonly module: AnyPluginModule;
  /** Where it came from, for messages: a path or "built-in". */
  readonly source: string;
  readonly resolution: Resolution;
  /** The arguments the module gets (an alias maps the old plugin's). */
  readonly args: string[];
}

/** A file in the plugin dirs, then a built-in, then an old name of qpsmtpd's; else a specific error. */
async function resolveModule(
  file: string,
  args: readonly string[],
  dirs: readonly string[],
  opts: LoadOptions,
  where: string,
  seen: readonly string[] = [],
): Promise<Resolved> {
  for (const d of dirs) {
    const path = join(d, `${file}.ts`);
    if (!fs.existsSync(path)) continue;
    const url = pathToFileURL(path).href + (opts.generation ? `?generation=${opts.generation}` : "");
    try {
      return { module: (await import(url)) as AnyPluginModule, source: path, resolution: { kind: "disk", path }, args: [...args] };
    } catch (e) {
      throw new PluginLoadError(`${where}: cannot import plugin ${file} from ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const builtin = opts.builtins[file];
  if (builtin) return { module: await builtin(), source: "built-in", resolution: { kind: "builtin" }, args: [...args] };
  const alias = ALIASES[file];
  if (alias && !seen.includes(file)) {
    const mapped = alias.args ? alias.args(args) : [...args];
    const target = await resolveModule(alias.target, mapped, dirs, opts, where, [...seen, file]);
    const resolution: Resolution = {
      kind: "alias",
      of: alias.target,
      args: mapped,
      target: target.resolution,
      ...(alias.note ? { note: alias.note } : {}),
    };
    return { ...target, resolution };
  }
  const unsupported = UNSUPPORTED[file];
  if (unsupported) throw new PluginLoadError(`${where}: ${unsupportedMessage(file, unsupported)}`);
  const perl = dirs.map((d) => join(d, file)).find((p) => isFile(p));
  if (perl) {
    throw new PluginLoadError(
      `${where}: plugin ${file} not found: ${perl} is a Perl plugin, and only TypeScript plugins load; ` +
        `port it to ${perl}.ts (docs/plugins.md)`,
    );
  }
  const searched = dirs.length ? ` (searched ${dirs.join(", ")} and the built-ins)` : "";
  throw new PluginLoadError(`${where}: plugin ${file} not found${searched}`);
}

function isFile(path: string): boolean {
  try {
    return fs.statSync(path).isFile();
  } catch {
    return false;
  }
}
