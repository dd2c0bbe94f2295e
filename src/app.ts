/**
 * Wiring shared by the daemon and its subcommands: the config search path, the host with its
 * real services (DNS, the stores: SQLite or Redis, TLS), and a loaded plugin generation.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LOGWARN, parseLogLevel } from "./api/codes.ts";
import { ConfigDir } from "./config/files.ts";
import { Logger } from "./core/logger.ts";
import type { Registry } from "./core/registry.ts";
import { ServerHost } from "./core/server_host.ts";
import { configuredResolver } from "./dns/resolver.ts";
import { loadRegistry } from "./plugin/loader.ts";
import { completeTracingChannel, isCompiled } from "./runtime/runtime.ts";
import { createTlsContext } from "./runtime/sockets.ts";
import { openStore } from "./store/choose.ts";
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

export function createHost(dirs: readonly string[]): ServerHost {
  completeTracingChannel();
  const logger = new Logger(LOGWARN);
  const config = new ConfigDir({ dirs, warn: (m) => logger.log(LOGWARN, m) });
  const lv = config.get("loglevel");
  if (lv !== undefined) logger.level = parseLogLevel(lv) ?? LOGWARN;
  return new ServerHost(config, logger, { dns: configuredResolver(), store: openStore, tls: createTlsContext });
}

/** Loads `logging` and `plugins` into a new registry. */
export function loadPlugins(host: ServerHost, generation = 0): Promise<Registry> {
  return loadRegistry({ host, builtins: BUILTINS, defaultPluginDirs: [join(homeDir(), "plugins")], generation });
}
