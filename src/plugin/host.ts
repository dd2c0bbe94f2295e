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

export class PluginHost {
  readonly configDir: ConfigDir;
  readonly logger: Logger;
  readonly version = VERSION;
  /** Set by the tls plugin; implicit-TLS listeners use it. */
  tls_context: SecureContext | undefined;
  /** `-m/--max-from-ip`, for hosts_allow-style plugins (0 = unlimited). */
  max_conn_ip = 0;

  constructor(configDir: ConfigDir, logger: Logger) {
    this.configDir = configDir;
    this.logger = logger;
  }

  config(name: string): string | undefined {
    return this.configDir.get(name);
  }

  config_all(name: string): string[] {
    return this.configDir.all(name);
  }

  log(level: number, message: string, hook = "", plugin = ""): void {
    this.logger.log(level, message, hook, plugin);
  }

  /** The host name from `me`, else the system's. */
  get me(): string {
    return this.configDir.get("me") ?? hostname();
  }

  spool_dir(): string {
    return this.configDir.get("spool_dir") ?? join(tmpdir(), `qpsmtpd-${process.getuid?.() ?? "user"}`);
  }
}
