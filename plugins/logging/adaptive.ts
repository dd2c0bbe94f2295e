/**
 * logging/adaptive: keeps each connection's log lines until its outcome is known, then writes
 * them to stderr at the `accept` level when mail was accepted, or at the `reject` level (each
 * line marked with `prefix`) when something was refused. Load it from `config/logging`.
 *
 * Hooks: logging (buffers), deny (marks the connection), queue_post (a message was accepted:
 * flush), disconnect (flush the rest).
 * Arguments: `accept L` (default LOGWARN), `reject L` (default LOGINFO), `prefix C` (default
 * `-`). Lines outside a connection are written at once at the accept level. At most 2000 lines
 * are kept per connection.
 */
import { DECLINED, LOGINFO, LOGWARN, parseLogLevel, type Hooks, type Plugin, type PluginHost } from "qpsmtpd";
import { formatLogLine } from "../../src/core/logger.ts";

interface Buffered {
  rejected: boolean;
  lines: Array<[number, string]>;
}

interface Settings {
  accept: number;
  reject: number;
  prefix: string;
  buffers: Map<string, Buffered>;
}

export function init(this: Plugin, _qp: PluginHost, ...args: string[]): void {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < args.length; i += 2) o[args[i]!] = args[i + 1]!;
  this.data["settings"] = {
    accept: parseLogLevel(o["accept"] ?? "") ?? LOGWARN,
    reject: parseLogLevel(o["reject"] ?? "") ?? LOGINFO,
    prefix: o["prefix"] ?? "-",
    buffers: new Map(),
  } satisfies Settings;
}

const settings = (p: Plugin): Settings => p.data["settings"] as Settings;

export const hook_logging: Hooks["logging"] = function (_txn, level, hook, plugin, message) {
  const s = settings(this);
  const conn = String(this.data["conn_id"] ?? "");
  const line = formatLogLine(hook, plugin, message, conn);
  if (!conn) {
    if (level <= s.accept) process.stderr.write(line);
    return DECLINED;
  }
  let b = s.buffers.get(conn);
  if (!b) s.buffers.set(conn, (b = { rejected: false, lines: [] }));
  if (b.lines.length < 2000) b.lines.push([level, line]);
  return DECLINED;
};

function flush(p: Plugin, done: boolean): void {
  const s = settings(p);
  const id = p.connection.id;
  const b = s.buffers.get(id);
  if (!b) return;
  const max = b.rejected ? s.reject : s.accept;
  for (const [level, line] of b.lines) if (level <= max) process.stderr.write(b.rejected ? `${s.prefix}${line}` : line);
  b.lines = [];
  b.rejected = false;
  if (done) s.buffers.delete(id);
}

export const hook_deny: Hooks["deny"] = function () {
  const b = settings(this).buffers.get(this.connection.id);
  if (b) b.rejected = true;
  return DECLINED;
};

export const hook_queue_post: Hooks["queue_post"] = function () {
  flush(this, false);
  return DECLINED;
};

export const hook_disconnect: Hooks["disconnect"] = function () {
  flush(this, true);
  return DECLINED;
};
