/**
 * The `store` config file's value: which backend holds the shared state.
 *
 *   sqlite                                            the default: SQLite in db_dir, one host
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]        one Redis (port 6379, db 0 by default)
 *   rediss://…                                        the same over TLS
 *   redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]
 *                                                     the master Sentinel names MASTER
 *   redis-cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]
 *                                                     a Redis Cluster (DB is always 0 there)
 *   (rediss-sentinel:// and rediss-cluster:// for TLS)
 *
 * Options after `?`, joined by `&`: `timeout=MS` (each operation and each connection attempt;
 * default 1000), `prefix=TEXT` (put before every key, to share one Redis between fleets),
 * `ca=FILE` (PEM CA certificates for TLS, beside the system's).
 * @module
 */

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisSpec {
  readonly kind: "redis";
  readonly mode: "single" | "sentinel" | "cluster";
  readonly tls: boolean;
  readonly nodes: readonly RedisNode[];
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  /** The Sentinel master name. */
  readonly master?: string;
  readonly timeoutMs: number;
  readonly prefix: string;
  /** A CA file for TLS. */
  readonly ca?: string;
  /** The URL without its password, for logs. */
  readonly location: string;
}

export type StoreSpec = { readonly kind: "sqlite" } | RedisSpec;

const SCHEMES: Readonly<Record<string, { mode: RedisSpec["mode"]; tls: boolean }>> = {
  redis: { mode: "single", tls: false },
  rediss: { mode: "single", tls: true },
  "redis-sentinel": { mode: "sentinel", tls: false },
  "rediss-sentinel": { mode: "sentinel", tls: true },
  "redis-cluster": { mode: "cluster", tls: false },
  "rediss-cluster": { mode: "cluster", tls: true },
};

/** Parses the `store` file's value; throws an Error that says what is wrong. */
export function parseStoreSpec(text: string): StoreSpec {
  const value = text.trim();
  if (value === "" || value === "sqlite") return { kind: "sqlite" };
  const m = /^([a-z-]+):\/\/(?:([^@/?]*)@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/.exec(value);
  const scheme = m ? SCHEMES[m[1]!] : undefined;
  if (!m || !scheme) {
    throw new Error(`store: "${redact(value)}" is not sqlite, redis://, rediss://, redis-sentinel:// or redis-cluster://`);
  }
  const [, name, userinfo, hostList, path = "", query = ""] = m;
  const nodes = hostList!.split(",").map((h) => node(h, scheme.mode === "sentinel" ? 26379 : 6379));
  if (scheme.mode === "single" && nodes.length > 1) throw new Error(`store: ${name}:// takes one host (a cluster is redis-cluster://)`);
  const parts = path.split("/").filter((p) => p !== "");
  let master: string | undefined;
  if (scheme.mode === "sentinel") {
    master = parts.shift();
    if (!master) throw new Error("store: redis-sentinel:// needs the master's name: redis-sentinel://HOST:PORT/MASTER[/DB]");
  }
  const dbText = parts.shift() ?? "0";
  if (!/^\d+$/.test(dbText) || parts.length > 0) throw new Error(`store: "${path}" is not /DB (a database number)`);
  const db = Number(dbText);
  if (scheme.mode === "cluster" && db !== 0) throw new Error("store: a Redis Cluster has only database 0");
  const opts = options(query);
  const [user, password] = credentials(userinfo);
  return {
    kind: "redis",
    mode: scheme.mode,
    tls: scheme.tls,
    nodes,
    ...(user ? { username: user } : {}),
    ...(password !== undefined ? { password } : {}),
    db,
    ...(master ? { master } : {}),
    timeoutMs: opts.timeoutMs,
    prefix: opts.prefix,
    ...(opts.ca ? { ca: opts.ca } : {}),
    location: redact(value),
  };
}

function node(text: string, defaultPort: number): RedisNode {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`store: "${text}" is not HOST[:PORT]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`store: port ${m[2]} is out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function options(query: string): { timeoutMs: number; prefix: string; ca?: string } {
  const out: { timeoutMs: number; prefix: string; ca?: string } = { timeoutMs: 1000, prefix: "" };
  for (const pair of query.split("&").filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
    if (k === "timeout" && /^\d+$/.test(v) && Number(v) > 0) out.timeoutMs = Number(v);
    else if (k === "prefix") out.prefix = v;
    else if (k === "ca" && v !== "") out.ca = v;
    else throw new Error(`store: unknown option "${pair}" (timeout=MS, prefix=TEXT, ca=FILE)`);
  }
  return out;
}

function credentials(userinfo: string | undefined): [string | undefined, string | undefined] {
  if (userinfo === undefined) return [undefined, undefined];
  const i = userinfo.indexOf(":");
  if (i < 0) return [decodeURIComponent(userinfo) || undefined, undefined];
  return [decodeURIComponent(userinfo.slice(0, i)) || undefined, decodeURIComponent(userinfo.slice(i + 1))];
}

/** The value with any password replaced by `***`. */
function redact(value: string): string {
  return value.replace(/^([a-z-]+:\/\/[^:@/]*):[^@/]*@/, "$1:***@");
}
