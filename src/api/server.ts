/**
 * The server as plugins see it: what `init` and `register` get as their first argument and every
 * hook as `this.server`. It is shared by every connection.
 * @module
 */
import type { Resolver } from "./dns.ts";
import type { Store } from "./store.ts";
import type { TlsOptions } from "./tls.ts";

export interface Server {
  /** The host name from `me`, else the system's. */
  readonly me: string;
  readonly version: string;
  /** The time, epoch ms, on the server's clock (a `FakeClock` in tests): use it for anything timed. */
  now(): number;
  /** The first value of a config file (the config hooks do not run outside a session). */
  config(name: string): string | undefined;
  /** Every value of a config file, `$include`s spliced in. */
  config_all(name: string): readonly string[];
  /** The path a config name resolves to in the search path, or undefined. */
  config_path(name: string): string | undefined;
  /** The first config directory: where relative paths in config files and arguments start. */
  readonly config_dir: string;
  spool_dir(): string;
  /** The shared asynchronous resolver (`dns_servers`, `dns_timeout`). */
  readonly dns: Resolver;
  /** The key/value store: the Redis named in the `store` config file, else SQLite in `dir` (default: `db_dir`, else the spool dir). */
  store(dir?: string): Store;
  log(level: number, ...message: unknown[]): void;
  /** Offers TLS with this certificate: STARTTLS and implicit-TLS ports use it. Throws when the certificate or key is unusable. */
  set_tls(options: TlsOptions): void;
  /** Whether a plugin offered TLS. */
  readonly tls: boolean;
  /** The `-m/--max-from-ip` limit (0 = none). */
  readonly max_conn_ip: number;
}
