/**
 * `server` for plugins: the host's public face. The host itself stays out of reach; the TLS
 * context a plugin offers belongs to its plugin generation, so a reload without the tls plugin
 * stops offering TLS.
 * @module
 */
import type { Resolver } from "../api/dns.ts";
import type { Server } from "../api/server.ts";
import type { Store } from "../api/store.ts";
import type { TlsOptions } from "../api/tls.ts";
import { VERSION } from "../api/version.ts";
import type { ServerHost } from "./server_host.ts";

/** Where `set_tls` puts the context: the registry of the plugins being loaded. */
export interface TlsHolder {
  tlsContext: unknown;
}

/** `Server` for plugins: the host's public face; the host itself stays out of reach. */
export class PluginServer implements Server {
  readonly #h: ServerHost;
  readonly #tls: TlsHolder;

  constructor(host: ServerHost, tls: TlsHolder) {
    this.#h = host;
    this.#tls = tls;
  }

  get me(): string {
    return this.#h.me;
  }

  get version(): string {
    return VERSION;
  }

  now(): number {
    return this.#h.clock.now();
  }

  config(name: string): string | undefined {
    return this.#h.configDir.get(name);
  }

  config_all(name: string): readonly string[] {
    return this.#h.configDir.all(name);
  }

  config_path(name: string): string | undefined {
    return this.#h.configDir.path(name);
  }

  get config_dir(): string {
    return this.#h.configDir.dirs[0] ?? ".";
  }

  spool_dir(): string {
    return this.#h.spoolDir();
  }

  get dns(): Resolver {
    return this.#h.resolver;
  }

  store(dir?: string): Store {
    return this.#h.store(dir);
  }

  log(level: number, ...message: unknown[]): void {
    if (this.#h.logger.wants(level)) this.#h.log(level, message.map(String).join(" "));
  }

  set_tls(options: TlsOptions): void {
    this.#tls.tlsContext = this.#h.tlsContext(options);
  }

  get tls(): boolean {
    return this.#tls.tlsContext !== undefined;
  }

  get max_conn_ip(): number {
    return this.#h.maxConnIp;
  }
}
