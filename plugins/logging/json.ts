/**
 * logging/json: structured logs, one JSON object a line, for log shippers (Loki, Elasticsearch,
 * journald's JSON, `jq`). Load it from `config/logging`.
 *
 *     {"time":"2026-11-29T21:15:01.547Z","level":"info","host":"mx1.example.org","pid":4242,
 *      "connection":"k3x9a1","transaction":"k3x9a1.1","client_ip":"192.0.2.7","hook":"rcpt",
 *      "plugin":"greylisting","message":"new"}
 *
 * (one line in the file). Fields, in this order, each left out when empty: `time` (UTC, ms),
 * `level` (syslog's name: emerg alert crit error warn notice info debug), `host` (`me`), `pid`,
 * `connection` (the connection id), `transaction` (`CONNECTION.N`: the Nth MAIL of the
 * connection, `.0` before the first), `client_ip`, `hook`, `plugin`, `message` (a multi-line
 * message stays one field, its newlines escaped).
 *
 * What the logging hook can know: it gets `level, hook, plugin, message, connection_id` and no
 * session, so the client's address comes from this plugin's own `connect` hook, which keeps the
 * address of each connection id (the last 65536 connections). Lines logged before the `connect`
 * hooks run (the core's own at accept, and `pre-connection` hooks) have the connection id but no
 * `client_ip`; the server's own lines have neither. The transaction number is counted by its
 * `mail` hook, as logging/transaction_id does.
 *
 * Hooks: logging; connect, mail (they only record; they decline).
 * Arguments: `[loglevel L] [PATH]`: the highest level written (a number or a name; default
 * LOGWARN) and the file (appended to, made with its directory, reopened on SIGHUP); without
 * PATH, stderr. Its own lines are not written.
 * Failure policy: a file that cannot be opened stops start-up (the admin asked for this log); a
 * write that fails later drops that line and says so once on stderr, so mail goes on.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, type Transaction } from "qpsmtpd";

interface Data {
  level: number;
  /** undefined: stderr. */
  path?: string;
  host: string;
}

const LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];
const KEEP = 65536;

/** Per connection id: the client's address and the transaction count; oldest first, bounded. */
const connections = new Map<string, { ip: string; n: number; last?: WeakRef<Transaction> }>();
/** Open files by path, shared by every instance; reopened by each load (SIGHUP). */
const files = new Map<string, number>();
let complained = false;

export const init: Init<Data> = function (server, ...args) {
  let level = LOGWARN;
  let path: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "loglevel") {
      const n = parseLogLevel(args[++i] ?? "");
      if (n === undefined) throw new Error(`logging/json: "${args[i] ?? ""}" is not a log level`);
      level = n;
    } else if (parseLogLevel(a) !== undefined && !a.includes("/")) {
      throw new Error(`logging/json: "${a}" is a level, not a file: write loglevel ${a}`);
    } else if (path === undefined) path = a;
    else throw new Error(`logging/json: unknown argument "${a}" (arguments: [loglevel L] [PATH])`);
  }
  if (path !== undefined) {
    const old = files.get(path);
    if (old !== undefined) fs.closeSync(old);
    try {
      fs.mkdirSync(dirname(path), { recursive: true });
      files.set(path, fs.openSync(path, "a", 0o640));
    } catch (e) {
      files.delete(path);
      throw new Error(`logging/json: cannot open ${path}: ${(e as Error).message}`);
    }
  }
  Object.assign(this.data, { level, host: server.me, ...(path !== undefined ? { path } : {}) });
  this.logs_up_to(level);
};

function remember(id: string, entry: { ip: string; n: number; last?: WeakRef<Transaction> }): void {
  connections.delete(id); // re-inserted last: the oldest connections go first
  connections.set(id, entry);
  if (connections.size > KEEP) connections.delete(connections.keys().next().value!);
}

export const hook_connect: Hooks<Data>["connect"] = function () {
  remember(this.connection.id, { ip: this.connection.remote_ip, n: 0 });
  return DECLINED;
};

export const hook_mail: Hooks<Data>["mail"] = function (txn) {
  const c = connections.get(this.connection.id) ?? { ip: this.connection.remote_ip, n: 0 };
  if (c.last?.deref() === txn) return DECLINED; // two instances of this plugin count once
  remember(this.connection.id, { ip: c.ip, n: c.n + 1, last: new WeakRef(txn) });
  return DECLINED;
};

/** The JSON line for one log call (exported for tests). */
export function jsonLine(
  time: Date,
  level: number,
  host: string,
  hook: string,
  plugin: string,
  message: string,
  connection_id: string,
): string {
  const c = connection_id ? connections.get(connection_id) : undefined;
  const o: Record<string, string | number> = { time: time.toISOString(), level: LEVELS[Math.max(0, Math.min(7, level))]! };
  if (host) o["host"] = host;
  o["pid"] = process.pid;
  if (connection_id) o["connection"] = connection_id;
  if (connection_id) o["transaction"] = `${connection_id}.${c?.n ?? 0}`;
  if (c) o["client_ip"] = c.ip;
  if (hook) o["hook"] = hook;
  if (plugin) o["plugin"] = plugin;
  o["message"] = message;
  return `${JSON.stringify(o)}\n`;
}

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, connection_id) {
  const s = this.data;
  if (level > s.level || plugin === this.plugin_name()) return DECLINED;
  const line = jsonLine(new Date(), level, s.host, hook, plugin, message, connection_id);
  if (s.path === undefined) {
    process.stderr.write(line);
    return DECLINED;
  }
  const fd = files.get(s.path);
  if (fd === undefined) return DECLINED;
  try {
    fs.writeSync(fd, line);
  } catch (e) {
    if (!complained) process.stderr.write(`logging/json: cannot write ${s.path}: ${(e as Error).message}\n`);
    complained = true;
  }
  return DECLINED;
};
