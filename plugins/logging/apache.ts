/**
 * logging/apache: writes log lines in Apache's error-log format, for sites whose log tools read
 * Apache's error log (qpsmtpd's plugin logged through mod_perl into Apache's ErrorLog; there is
 * no Apache here, so this one writes the file itself). Load it from `config/logging`.
 *
 * Line: `[Wed Oct 11 14:32:52.123456 2000] [qpsmtpd:warn] [pid 4242] MESSAGE`, where MESSAGE is
 * qpsmtpd's own: `PID PLUGIN plugin: text` (or `PID running plugin (HOOK): text`), with the
 * connection id after the pid when the line belongs to a connection. Levels are Apache's names
 * (emerg alert crit error warn notice info debug), which are qpsmtpd's.
 *
 * Hooks: logging.
 * Arguments: `[loglevel L] [PATH]`: the highest level written (a number or a name, as Apache's
 * LogLevel; default LOGWARN) and the file (default `/var/log/apache2/qpsmtpd.log`, the ErrorLog
 * of qpsmtpd's example; made with its directory if missing, appended to, reopened on SIGHUP).
 * Its own lines are not written. Any other word stops start-up.
 * Failure policy: a file that cannot be opened stops start-up (the admin asked for this log);
 * a write that fails later drops that line and says so once on stderr, so mail goes on.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, parsePluginArgs } from "qpsmtpd";

interface Data {
  level: number;
  path: string;
}

const LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Open files by path, shared by every instance; reopened by each load (SIGHUP). */
const files = new Map<string, number>();
let complained = false;

export const init: Init<Data> = function (_server, ...args) {
  const a = parsePluginArgs("logging/apache", args, { positional: [0, args.length], usage: "PATH" });
  if (a.positional.length > 1) {
    // One PATH: of two words, the one that is not a path is the mistake (`logleve LOGINFO /x`).
    const odd = a.positional.find((w) => !w.includes("/")) ?? a.positional[1];
    throw new Error(`logging/apache: unknown argument "${odd}" (it takes: PATH, loglevel VALUE)`);
  }
  const path = a.positional[0] ?? "/var/log/apache2/qpsmtpd.log";
  const level = a.values.loglevel === undefined ? LOGWARN : parseLogLevel(a.values.loglevel);
  if (level === undefined) throw new Error(`logging/apache: "${a.values.loglevel}" is not a log level`);
  const old = files.get(path);
  if (old !== undefined) fs.closeSync(old);
  try {
    fs.mkdirSync(dirname(path), { recursive: true });
    files.set(path, fs.openSync(path, "a", 0o640));
  } catch (e) {
    files.delete(path);
    throw new Error(`logging/apache: cannot open ${path}: ${(e as Error).message}`);
  }
  Object.assign(this.data, { level, path } satisfies Data);
  this.logs_up_to(level);
};

const two = (n: number) => String(n).padStart(2, "0");

/** Apache's `%{u}t`: `Wed Oct 11 14:32:52.123456 2000`, local time. */
export function apacheTime(d: Date): string {
  const us = String(d.getMilliseconds() * 1000).padStart(6, "0");
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${
    two(d.getSeconds())
  }.${us} ${d.getFullYear()}`;
}

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, connection_id) {
  const s = this.data;
  if (level > s.level || plugin === this.plugin_name()) return DECLINED;
  const fd = files.get(s.path);
  if (fd === undefined) return DECLINED;
  const who = plugin ? ` ${plugin} plugin:` : hook ? ` running plugin (${hook}):` : "";
  const head = `[${apacheTime(new Date())}] [qpsmtpd:${LEVELS[Math.max(0, Math.min(7, level))]}] [pid ${process.pid}] ${process.pid}${
    connection_id ? ` ${connection_id}` : ""
  }${who}`;
  try {
    fs.writeSync(fd, message.split("\n").map((l) => `${head} ${l}\n`).join(""));
  } catch (e) {
    if (!complained) process.stderr.write(`logging/apache: cannot write ${s.path}: ${(e as Error).message}\n`);
    complained = true;
  }
  return DECLINED;
};
