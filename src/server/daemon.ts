/**
 * What every serving process does, alone or as a worker: load the plugins, log stray errors,
 * reload on SIGHUP, drain on SIGTERM.
 * @module
 */
import { LOGCRIT, LOGERROR, LOGNOTICE } from "../api/codes.ts";
import { connectLogging } from "../core/logging.ts";
import type { Registry } from "../core/registry.ts";
import type { ServerHost } from "../core/server_host.ts";
import { cleanStaleSpool } from "../core/spool.ts";
import type { SmtpServer } from "./server.ts";

/** Loads `logging` and `plugins` into generation `generation` (app.ts's, given by main.ts). */
export type LoadPlugins = (host: ServerHost, generation: number) => Promise<Registry>;

/** Cleans the spool of dead processes' files and loads the first plugin generation (throws). */
export async function firstGeneration(host: ServerHost, loadPlugins: LoadPlugins): Promise<Registry> {
  const stale = cleanStaleSpool(host.spoolDir());
  if (stale) host.log(LOGNOTICE, `removed ${stale} spool file(s) left by a process that is gone`, "server");
  const registry = await loadPlugins(host, 0);
  host.loadedAt = host.clock.now();
  connectLogging(registry);
  return registry;
}

/**
 * A plugin's stray asynchronous error (a timer, an event without a handler) is logged, and the
 * server goes on serving: one broken plugin must not take every connection down.
 */
export function catchStrayErrors(host: ServerHost): void {
  process.on("uncaughtException", (e) => host.log(LOGCRIT, `uncaught error (a plugin's?): ${e.stack ?? e.message}`, "server"));
  process.on(
    "unhandledRejection",
    (e) => host.log(LOGCRIT, `unhandled rejection (a plugin's?): ${e instanceof Error ? e.stack ?? e.message : String(e)}`, "server"),
  );
}

/** Reloads config and plugins for new connections; open sessions keep their generation. */
export class Reloader {
  readonly #host: ServerHost;
  readonly #server: SmtpServer;
  readonly #load: LoadPlugins;
  readonly #loaded: (r: Registry) => void;
  #generation = 0;
  #busy: Promise<void> = Promise.resolve();

  constructor(host: ServerHost, server: SmtpServer, load: LoadPlugins, loaded: (r: Registry) => void = () => undefined) {
    this.#host = host;
    this.#server = server;
    this.#load = load;
    this.#loaded = loaded;
  }

  /** One reload after another: a second SIGHUP during a load reloads again after it. */
  reload(): Promise<void> {
    this.#busy = this.#busy.then(() => this.#once());
    return this.#busy;
  }

  async #once(): Promise<void> {
    const host = this.#host;
    try {
      host.configDir.invalidate();
      const next = await this.#load(host, ++this.#generation);
      this.#server.registry = next;
      host.loadedAt = host.clock.now();
      connectLogging(next);
      this.#loaded(next);
      host.log(LOGNOTICE, `reloaded: ${next.plugins.length} plugins`, "server");
    } catch (e) {
      host.log(LOGERROR, `reload failed, keeping the running plugins: ${(e as Error).message}`, "server");
    }
  }
}
