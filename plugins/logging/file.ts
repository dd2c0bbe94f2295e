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
 * instead when the file is first opened after start-up or a reload.
 * Line format: `TIMESTAMP PID CONNECTION (hook) plugin: message`.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, strftime } from "qpsmtpd";

interface Data {
  level: number;
  path: string;
  tsformat: string;
  nosplit: boolean;
  truncate: boolean;
}

/** Open files by path, shared by every instance and generation; closed on reload. */
const files = new Map<string, number>();

export const init: Init<Data> = function (_server, ...args) {
  const s: Data = { level: LOGWARN, path: "", tsformat: "%F %T", nosplit: false, truncate: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "loglevel") {
      const n = parseLogLevel(args[++i] ?? "");
      if (n === undefined) throw new Error(`logging/file: "${args[i]}" is not a log level`);
      s.level = n;
    } else if (a === "tsformat") s.tsformat = args[++i] ?? s.tsformat;
    else if (a === "nosplit") s.nosplit = true;
    else if (a === "reopen") s.truncate = true;
    else s.path = a;
  }
  if (!s.path) throw new Error("logging/file needs a file name");
  for (const fd of files.values()) fs.closeSync(fd); // SIGHUP reload: reopen everything
  files.clear();
  Object.assign(this.data, s);
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

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  const s = this.data;
  if (level > s.level) return DECLINED;
  const now = new Date();
  const path = strftime(s.path, now, conn);
  const text = s.nosplit ? message.replace(/\n/g, " | ") : message;
  const where = `${hook ? `(${hook}) ` : ""}${plugin ? `${plugin}: ` : ""}`;
  const lines = text.split("\n").map((l) => `${strftime(s.tsformat, now)} ${process.pid}${conn ? ` ${conn}` : ""} ${where}${l}\n`).join("");
  if (s.path.includes("%i")) fs.appendFileSync(path, lines);
  else fs.writeSync(fdFor(path, s.truncate), lines);
  if (files.size > 64) {
    for (const [p, fd] of files) if (p !== path) (fs.closeSync(fd), files.delete(p));
  }
  return DECLINED;
};
