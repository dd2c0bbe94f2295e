/**
 * Loads `config/logging` and `config/plugins`: resolves each name through `plugin_dirs` (a
 * `<dir>/<name>.ts` file) and then the built-ins, imports it, checks its exports against the
 * hook list, and runs init, the automatic `hook_*` registration and register, in file order.
 * Every problem stops the load with an error naming the file and line.
 * @module
 */
import * as fs from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ConfigDir, ConfigLine } from "../config/files.ts";
import { PluginLoadError } from "../core/errors.ts";
import { HOOK_NAMES, hookFromMethodName, hookMethodName, type HookFn, type HookName, type PluginModule } from "../core/hooks.ts";
import { PluginHost } from "./host.ts";
import { Plugin } from "./plugin.ts";
import { Registry } from "./registry.ts";

export interface LoadOptions {
  readonly host: PluginHost;
  readonly builtins: Readonly<Record<string, PluginModule>>;
  /** Where plugins are looked for when `plugin_dirs` is not set. */
  readonly defaultPluginDirs: readonly string[];
  /** Changes on every reload so that edited disk plugins are imported afresh. */
  readonly generation?: number;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_\-./]*(?::\d+)?$/;

/** The directories searched for disk plugins: `plugin_dirs` (relative to its own file) or the default. */
export function pluginDirs(config: ConfigDir, fallback: readonly string[]): string[] {
  const lines = config.lines("plugin_dirs");
  if (lines.length === 0) return [...fallback];
  return lines.map((l) => (isAbsolute(l.value) ? l.value : resolve(dirname(l.file), l.value)));
}

export async function loadRegistry(opts: LoadOptions): Promise<Registry> {
  const { host } = opts;
  const registry = new Registry(host);
  const dirs = pluginDirs(host.configDir, opts.defaultPluginDirs);
  for (const file of ["logging", "plugins"]) {
    for (const line of host.configDir.lines(file)) {
      registry.add(await loadOne(line, dirs, opts));
    }
  }
  return registry;
}

async function loadOne(line: ConfigLine, dirs: readonly string[], opts: LoadOptions): Promise<Plugin> {
  const where = `${line.file}:${line.line}`;
  if (!/^[\x20-\x7e]+$/.test(line.value)) throw new PluginLoadError(`${where}: the line has non-printable characters`);
  const [name, ...args] = line.value.split(/\s+/);
  if (name?.includes("::")) throw new PluginLoadError(`${where}: "${name}" is a Perl module plugin; only TypeScript plugins load`);
  if (!name || !NAME.test(name) || name.includes("..")) throw new PluginLoadError(`${where}: bad plugin name "${name}"`);
  const file = name.replace(/:\d+$/, "");
  const mod = await resolveModule(file, dirs, opts, where);
  const plugin = new Plugin(name, file, args, mod.module, opts.host);
  for (const key of Object.keys(mod.module)) {
    if (key.startsWith("hook_") && !hookFromMethodName(key)) {
      throw new PluginLoadError(`${where}: plugin ${name} (${mod.source}) exports ${key}, which is not a qpsmtpd hook`);
    }
  }
  try {
    if (typeof mod.module.init === "function") await mod.module.init.call(plugin, opts.host, ...args);
    for (const hook of HOOK_NAMES) {
      const fn = (mod.module as Record<string, unknown>)[hookMethodName(hook)];
      if (fn === undefined) continue;
      if (typeof fn !== "function") throw new Error(`${hookMethodName(hook)} is not a function`);
      plugin.register_hook(hook as HookName, fn as HookFn<HookName>);
    }
    if (typeof mod.module.register === "function") await mod.module.register.call(plugin, opts.host, ...args);
  } catch (e) {
    throw new PluginLoadError(`${where}: plugin ${name} failed to load: ${(e as Error).message}`, { cause: e });
  }
  for (const r of plugin._registrations) {
    if (!HOOK_NAMES.includes(r.hook)) {
      throw new PluginLoadError(`${where}: plugin ${name} registered unknown hook "${r.hook}"`);
    }
  }
  return plugin;
}

async function resolveModule(
  file: string,
  dirs: readonly string[],
  opts: LoadOptions,
  where: string,
): Promise<{ module: PluginModule; source: string }> {
  for (const d of dirs) {
    const path = join(d, `${file}.ts`);
    if (!fs.existsSync(path)) continue;
    const url = pathToFileURL(path).href + (opts.generation ? `?generation=${opts.generation}` : "");
    try {
      return { module: (await import(url)) as PluginModule, source: path };
    } catch (e) {
      throw new PluginLoadError(`${where}: cannot import plugin ${file} from ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const builtin = opts.builtins[file];
  if (builtin) return { module: builtin, source: "built-in" };
  const searched = dirs.length ? ` (searched ${dirs.join(", ")} and the built-ins)` : "";
  throw new PluginLoadError(`${where}: plugin ${file} not found${searched}`);
}
