/**
 * The server-wide part of qpsmtpd's `$qp`: what init/register and pre-connection hooks use.
 * @module
 */
import type { SecureContext } from "node:tls";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { ConfigDir } from "../config/files.ts";
import type { Logger } from "../core/logger.ts";
import { VERSION } from "../version.ts";
import { type NameServer, parseServer, Resolver, systemServers } from "../dns/resolver.ts";

export class PluginHost {
  readonly configDir: ConfigDir;
  readonly logger: Logger;
  readonly version = VERSION;
  /** Set by the tls plugin; implicit-TLS listeners use it. */
  tls_context: SecureContext | undefined;
  /** `-m/--max-from-ip`, for hosts_allow-style plugins (0 = unlimited). */
  max_conn_ip = 0;

  #resolver: Resolver | undefined;
  #resolverKey = "";

  constructor(configDir: ConfigDir, logger: Logger) {
    this.configDir = configDir;
    this.logger = logger;
  }

  config(name: string): string | undefined {
    return this.configDir.get(name);
  }

  config_all(name: string): readonly string[] {
    return this.configDir.all(name);
  }

  log(level: number, message: string, hook = "", plugin = ""): void {
    this.logger.log(level, message, hook, plugin);
  }

  /**
   * The shared DNS resolver: servers from `dns_servers` (`ip`, `ip:port` or `[v6]:port` a line),
   * else /etc/resolv.conf; `dns_timeout` seconds per try (default 3). Rebuilt when those change.
   */
  get resolver(): Resolver {
    const lines = this.configDir.lines("dns_servers");
    const timeout = this.configDir.get("dns_timeout") ?? "3";
    const key = `${lines.map((l) => l.value).join(" ")}|${timeout}`;
    if (this.#resolver && key === this.#resolverKey) return this.#resolver;
    const servers: NameServer[] = [];
    for (const l of lines) {
      const s = parseServer(l.value);
      if (s) servers.push(s);
      else this.log(3, `${l.file}:${l.line}: "${l.value}" is not a name server address; ignoring it`);
    }
    const ms = Math.max(100, Number(timeout) * 1000 || 3000);
    this.#resolver = new Resolver({ servers: servers.length ? servers : systemServers(), timeoutMs: ms });
    this.#resolverKey = key;
    return this.#resolver;
  }

  /** The host name from `me`, else the system's. */
  get me(): string {
    return this.configDir.get("me") ?? hostname();
  }

  spool_dir(): string {
    return this.configDir.get("spool_dir") ?? join(tmpdir(), `qpsmtpd-${process.getuid?.() ?? "user"}`);
  }
}
