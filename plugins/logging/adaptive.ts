/**
 * logging/adaptive: keeps each connection's log lines until its outcome is known, then writes
 * them to stderr at the `accept` level when mail was accepted, or at the `reject` level (each
 * line marked with `prefix`) when something was refused. Load it from `config/logging`.
 *
 * Hooks: logging (buffers), deny (marks the connection), queue_post (a message was accepted:
 * flush), disconnect (flush the rest).
 * Arguments: `accept L` (default LOGWARN), `reject L` (default LOGINFO), `prefix C` (default
 * `-`). Lines outside a connection are written at once at the accept level. At most 2000 lines
 * are kept per connection. A level that is not one, or any other word, stops start-up.
 */
import {
  DECLINED,
  formatLogLine,
  type HookContext,
  type Hooks,
  type Init,
  LOGINFO,
  LOGWARN,
  parseLogLevel,
  parsePluginArgs,
} from "qpsmtpd";

interface Buffered {
  rejected: boolean;
  lines: Array<[number, string]>;
}

interface Data {
  accept: number;
  reject: number;
  prefix: string;
  /** Each connection's lines, by connection id. */
  buffers: Map<string, Buffered>;
}

export const init: Init<Data> = function (_server, ...args) {
  const o = parsePluginArgs("logging/adaptive", args, { values: ["accept", "reject", "prefix"] }).values;
  const level = (key: "accept" | "reject", fallback: number): number => {
    const word = o[key];
    const n = word === undefined ? fallback : parseLogLevel(word);
    if (n === undefined) throw new Error(`logging/adaptive: ${key} "${word}" is not a log level`);
    return n;
  };
  this.data.accept = level("accept", LOGWARN);
  this.data.reject = level("reject", LOGINFO);
  this.data.prefix = o.prefix ?? "-";
  this.data.buffers = new Map();
  this.logs_up_to(Math.max(this.data.accept, this.data.reject));
};

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  const s = this.data;
  const line = formatLogLine(hook, plugin, message, conn);
  if (!conn) {
    if (level <= s.accept) process.stderr.write(line);
    return DECLINED;
  }
  let b = s.buffers.get(conn);
  if (!b) s.buffers.set(conn, b = { rejected: false, lines: [] });
  if (b.lines.length < 2000) b.lines.push([level, line]);
  return DECLINED;
};

function flush(p: HookContext<Data>, done: boolean): void {
  const s = p.data;
  const id = p.connection.id;
  const b = s.buffers.get(id);
  if (!b) return;
  const max = b.rejected ? s.reject : s.accept;
  for (const [level, line] of b.lines) if (level <= max) process.stderr.write(b.rejected ? `${s.prefix}${line}` : line);
  b.lines = [];
  b.rejected = false;
  if (done) s.buffers.delete(id);
}

export const hook_deny: Hooks<Data>["deny"] = function () {
  const b = this.data.buffers.get(this.connection.id);
  if (b) b.rejected = true;
  return DECLINED;
};

export const hook_queue_post: Hooks<Data>["queue_post"] = function () {
  flush(this, false);
  return DECLINED;
};

export const hook_disconnect: Hooks<Data>["disconnect"] = function () {
  flush(this, true);
  return DECLINED;
};
