/**
 * Wiring shared by the daemon and its subcommands: config search path, logger, plugin host and
 * a loaded plugin generation with its logging hooks connected.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigDir } from "./config/files.ts";
import { LOGWARN, parseLogLevel } from "./core/codes.ts";
import { Logger } from "./core/logger.ts";
import { Transaction } from "./core/transaction.ts";
import { PluginHost } from "./plugin/host.ts";
import { loadRegistry } from "./plugin/loader.ts";
import type { Registry } from "./plugin/registry.ts";
import { isCompiled } from "./runtime/runtime.ts";
import { BUILTINS } from "../plugins/mod.ts";

/** The program's home: the executable's directory, or the repository when run from source. */
export function homeDir(): string {
  return isCompiled() ? dirname(process.execPath) : resolve(dirname(fileURLToPath(import.meta.url)), "..");
}

/** qpsmtpd's per-file search order: the given dir (or QPSMTPD_CONFIG), `config/` beside the program, qmail's control. */
export function configDirs(explicit?: string): string[] {
  const dirs: string[] = [];
  const first = explicit ?? process.env["QPSMTPD_CONFIG"];
  if (first) dirs.push(resolve(first));
  dirs.push(join(homeDir(), "config"));
  dirs.push(join(process.env["QMAIL"] ?? "/var/qmail", "control"));
  return [...new Set(dirs)];
}

export function createHost(dirs: readonly string[]): PluginHost {
  const logger = new Logger(LOGWARN);
  const config = new ConfigDir({ dirs, warn: (m) => logger.log(LOGWARN, m) });
  const lv = config.get("loglevel");
  if (lv !== undefined) logger.level = parseLogLevel(lv) ?? LOGWARN;
  return new PluginHost(config, logger);
}

/** Loads `logging` and `plugins` into a new registry. */
export function loadPlugins(host: PluginHost, generation = 0): Promise<Registry> {
  return loadRegistry({ host, builtins: BUILTINS, defaultPluginDirs: [join(homeDir(), "plugins")], generation });
}

/** Routes the host's log calls through `registry`'s logging hooks. */
export function connectLogging(registry: Registry): void {
  const chain = registry.chain("logging");
  const txn = new Transaction();
  registry.host.logger.sink = chain.length === 0 ? undefined : (level, hook, plugin, message, connId) => {
    for (const e of chain) {
      e.plugin.data["conn_id"] = connId;
      try {
        const r = (e.fn as (...a: unknown[]) => unknown).call(e.plugin, txn, level, hook, plugin, message);
        if (r instanceof Promise) r.catch(() => undefined);
      } catch { /* a broken logger must not break mail */ }
    }
    return true;
  };
}
