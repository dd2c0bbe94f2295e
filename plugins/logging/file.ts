/**
 * logging/file: writes log lines to a file. Load it from `config/logging`.
 *
 * Hooks: logging.
 * Arguments: `[loglevel L] [reopen] [nosplit] [tsformat FORMAT] PATH`.
 *  - PATH may hold strftime escapes (`/var/log/qpsmtpd/%Y-%m-%d.log`: a new file when the name
 *    changes) and `%i`, the session id (one file per connection).
 *  - `loglevel` (default LOGWARN); `tsformat` the time stamp (default `%F %T`); `nosplit` keeps
 *    a multi-line message on one line with `\n` shown as ` | `.
 * Files are opened for appending and reopened on SIGHUP (for log rotation); `reopen` truncates
 * instead when the file is first opened after start-up or a reload. The lines of one turn of the
 * event loop go to each file in one write at its end (and at exit): a busy server makes one
 * system call for the lines of many connections, not one per line.
 * Line format: `TIMESTAMP PID CONNECTION (hook) plugin: message`.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, strftime } from "qpsmtpd";

interface Data {
  level: number;
  path: string;
  tsformat: string;
  nosplit: boolean;
  truncate: boolean;
  /** How the path is made for each line: a file per connection (`%i`), by time (other escapes), or fixed. */
  naming: "connection" | "time" | "fixed";
}

/** Open files by path, shared by every instance and generation; closed on reload. */
const files = new Map<string, number>();

/** Lines not written yet, by path, with how the file is opened. */
const pending = new Map<string, { text: string; perConnection: boolean; truncate: boolean }>();
/** A turn's lines past this size are written at once. */
const FLUSH_BYTES = 64 * 1024;

function write(path: string, perConnection: boolean, truncate: boolean, text: string): void {
  if (pending.size === 0) setImmediate(flush); // the turn's first line
  const p = pending.get(path);
  if (p) p.text += text;
  else pending.set(path, { text, perConnection, truncate });
  if ((p?.text.length ?? text.length) >= FLUSH_BYTES) flush();
}

/** Writes every pending line. A file that cannot be written is said on stderr (logging it would come back here). */
function flush(): void {
  for (const [path, p] of pending) {
    try {
      if (p.perConnection) fs.appendFileSync(path, p.text);
      else fs.writeSync(fdFor(path, p.truncate), p.text);
    } catch (e) {
      process.stderr.write(`logging/file: cannot write ${path}: ${(e as Error).message}\n`);
    }
  }
  pending.clear();
  if (files.size > 64) {
    for (const fd of files.values()) fs.closeSync(fd);
    files.clear();
  }
}

process.on("exit", flush);

export const init: Init<Data> = function (_server, ...args) {
  const s: Data = { level: LOGWARN, path: "", tsformat: "%F %T", nosplit: false, truncate: false, naming: "fixed" };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "loglevel") {
      const n = parseLogLevel(args[++i] ?? "");
      if (n === undefined) throw new Error(`logging/file: "${args[i]}" is not a log level`);
      s.level = n;
    } else if (a === "tsformat") s.tsformat = args[++i] ?? s.tsformat;
    else if (a === "nosplit") s.nosplit = true;
    else if (a === "reopen") s.truncate = true;
    else if (parseLogLevel(a) !== undefined && !a.includes("/")) {
      throw new Error(`logging/file: "${a}" is a level, not a file: write loglevel ${a}`);
    } else if (!s.path) s.path = a;
    else throw new Error(`logging/file: unknown argument "${a}" (arguments: [loglevel L] [reopen] [nosplit] [tsformat FORMAT] PATH)`);
  }
  if (!s.path) throw new Error("logging/file needs a file name");
  s.naming = s.path.includes("%i") ? "connection" : s.path.includes("%") ? "time" : "fixed";
  flush(); // SIGHUP reload: the lines so far to the old files, then reopen everything
  for (const fd of files.values()) fs.closeSync(fd);
  files.clear();
  Object.assign(this.data, s);
  this.logs_up_to(s.level);
};

function fdFor(path: string, truncate: boolean): number {
  let fd = files.get(path);
  if (fd === undefined) {
    fs.mkdirSync(dirname(path), { recursive: true });
    fd = fs.openSync(path, truncate ? "w" : "a", 0o640);
    files.set(path, fd);
  }
  return fd;
}

/** Time stamps by format, made once a second rather than once a line (the formats have no finer field). */
const stamps = new Map<string, { second: number; text: string }>();

function stamp(format: string, now: number): string {
  const second = Math.floor(now / 1000);
  let s = stamps.get(format);
  if (s === undefined || s.second !== second) stamps.set(format, s = { second, text: strftime(format, new Date(now)) });
  return s.text;
}

const PID = String(process.pid);

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  const s = this.data;
  if (level > s.level) return DECLINED;
  const now = Date.now();
  const path = s.naming === "connection" ? strftime(s.path, new Date(now), conn) : s.naming === "time" ? stamp(s.path, now) : s.path;
  const text = s.nosplit ? message.replace(/\n/g, " | ") : message;
  const head = `${stamp(s.tsformat, now)} ${PID}${conn ? ` ${conn}` : ""} ${hook ? `(${hook}) ` : ""}${plugin ? `${plugin}: ` : ""}`;
  const lines = text.includes("\n") ? text.split("\n").map((l) => `${head}${l}\n`).join("") : `${head}${text}\n`;
  write(path, s.naming === "connection", s.truncate, lines);
  return DECLINED;
};
