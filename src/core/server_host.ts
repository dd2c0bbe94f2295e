/**
 * The server-wide state every plugin generation shares: config, logger, clock, resolver and
 * stores. What depends on the outside world (DNS, stores, TLS contexts) is given by whoever
 * builds the host, so tests can give fakes.
 * @module
 */
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { Resolver } from "../api/dns.ts";
import type { Store } from "../api/store.ts";
import type { TlsOptions } from "../api/tls.ts";
import type { ConfigDir } from "../config/files.ts";
import { countingResolver, countingStore, ServerMetrics } from "../metrics/server_metrics.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Logger } from "./logger.ts";

export interface HostServices {
  /** The resolver for the current `dns_servers`/`dns_timeout` (called often; cache inside). */
  readonly dns: (config: ConfigDir, log: (level: number, message: string) => void) => Resolver;
  /**
   * The store whose files live in `dir`, expiring entries on `now`; `url` is the `store` config
   * file's value (a Redis URL shares one store whatever `dir` is), `log` hears its outages.
   */
  readonly store: (dir: string, now: () => number, url?: string, log?: (level: number, message: string) => void) => Store;
  /** Builds a TLS context from a plugin's options; throws when they are unusable. */
  readonly tls: (options: TlsOptions) => unknown;
  readonly clock?: Clock;
}

export class ServerHost {
  readonly configDir: ConfigDir;
  readonly logger: Logger;
  readonly clock: Clock;
  /** `-m/--max-from-ip` (0 = unlimited). */
  maxConnIp = 0;
  /** Open connections are near the limit: reads get `stress_timeout` (Postfix's stress mode). */
  stressed = false;
  /** Plugin calls awaited now, for naming them when the event loop stalls. */
  readonly running = new Set<{ readonly plugin: string; readonly hook: string; readonly since: number }>();
  /** This process's counters (the metrics endpoint and `qpsmtpd status` read them). */
  readonly metrics = new ServerMetrics();
  /** When the plugins were last (re)loaded, epoch ms. */
  loadedAt = 0;
  readonly #services: HostServices;

  constructor(configDir: ConfigDir, logger: Logger, services: HostServices) {
    this.configDir = configDir;
    this.logger = logger;
    this.#services = services;
    this.clock = services.clock ?? systemClock;
  }

  log(level: number, message: string, hook = "", plugin = ""): void {
    this.logger.log(level, message, hook, plugin);
  }

  get resolver(): Resolver {
    return countingResolver(this.#services.dns(this.configDir, (level, message) => this.log(level, message, "dns")), this.metrics);
  }

  store(dir?: string): Store {
    const where = dir ?? this.configDir.get("db_dir") ?? this.spoolDir();
    return countingStore(
      this.#services.store(where, () => this.clock.now(), this.configDir.get("store"), (level, m) => this.log(level, m, "", "store")),
      this.metrics,
    );
  }

  /** A TLS context (opaque to the engine; the runtime upgrades with it). */
  tlsContext(options: TlsOptions): unknown {
    return this.#services.tls(options);
  }

  /** The host name from `me`, else the system's. */
  get me(): string {
    return this.configDir.get("me") ?? hostname();
  }

  spoolDir(): string {
    return this.configDir.get("spool_dir") ?? join(tmpdir(), `qpsmtpd-${process.getuid?.() ?? "user"}`);
  }
}
