/**
 * logging/syslog: sends log lines to syslog (RFC 3164 over UDP). Load it from `config/logging`.
 *
 * Hooks: logging.
 * Lines are `<PRI>Mmm dd hh:mm:ss HOST ident[pid]: CONNECTION (hook) plugin: message`.
 * Arguments: `loglevel L` (default LOGWARN), `ident NAME` (default qpsmtpd), `facility NAME`
 * (default LOG_MAIL), `priority NAME` (a fixed severity for every line instead of the line's
 * level: LOG_NOTICE and the other syslog(3) names, a qpsmtpd level name, or 0-7), `logsock
 * udp:HOST:PORT` (default udp:127.0.0.1:514; rsyslog needs its imudp module). Any other word, or
 * a priority that is none of these, stops start-up.
 */
import * as dgram from "node:dgram";
import { isIPv6 } from "node:net";
import { hostname } from "node:os";
import { DECLINED, type Hooks, type Init, parseLogLevel, parsePluginArgs, strftime } from "qpsmtpd";

const HOST = hostname().split(".")[0] ?? "localhost";

const FACILITIES: Record<string, number> = {
  LOG_KERN: 0,
  LOG_USER: 1,
  LOG_MAIL: 2,
  LOG_DAEMON: 3,
  LOG_AUTH: 4,
  LOG_SYSLOG: 5,
  LOG_LPR: 6,
  LOG_NEWS: 7,
  LOG_LOCAL0: 16,
  LOG_LOCAL1: 17,
  LOG_LOCAL2: 18,
  LOG_LOCAL3: 19,
  LOG_LOCAL4: 20,
  LOG_LOCAL5: 21,
  LOG_LOCAL6: 22,
  LOG_LOCAL7: 23,
};

/** syslog(3)'s severities by name, as qpsmtpd's `priority LOG_NOTICE` gives them. */
const SEVERITIES: Record<string, number> = {
  LOG_EMERG: 0,
  LOG_ALERT: 1,
  LOG_CRIT: 2,
  LOG_ERR: 3,
  LOG_WARNING: 4,
  LOG_NOTICE: 5,
  LOG_INFO: 6,
  LOG_DEBUG: 7,
};

/** A `priority`: a syslog severity name, a qpsmtpd level name, or 0-7. */
function priorityOf(word: string): number {
  const n = SEVERITIES[word.toUpperCase()] ?? parseLogLevel(word);
  if (n === undefined) throw new Error(`logging/syslog: priority "${word}" is not a syslog severity (LOG_NOTICE, ...) or a log level`);
  return n;
}

interface Data {
  level: number;
  ident: string;
  facility: number;
  priority: number | undefined;
  host: string;
  port: number;
  sock: dgram.Socket;
}

export const init: Init<Data> = function (_server, ...args) {
  const o = parsePluginArgs("logging/syslog", args, { values: ["priority", "ident", "facility", "logsock"] }).values;
  const level = parseLogLevel(o["loglevel"] ?? "LOGWARN");
  if (level === undefined) throw new Error(`logging/syslog: "${o["loglevel"]}" is not a log level`);
  const facility = FACILITIES[(o["facility"] ?? "LOG_MAIL").toUpperCase().replace(/^(?!LOG_)/, "LOG_")];
  if (facility === undefined) throw new Error(`logging/syslog: unknown facility ${o["facility"]}`);
  const m = /^udp:(.+):(\d+)$/.exec(o["logsock"] ?? "udp:127.0.0.1:514");
  if (!m) throw new Error(`logging/syslog: logsock must be udp:HOST:PORT, not ${o["logsock"]}`);
  const host = m[1]!.replace(/^\[|\]$/g, "");
  const sock = dgram.createSocket(isIPv6(host) ? "udp6" : "udp4");
  sock.unref();
  sock.on("error", () => undefined);
  Object.assign(
    this.data,
    {
      level,
      ident: o["ident"] ?? "qpsmtpd",
      facility,
      priority: o["priority"] === undefined ? undefined : priorityOf(o["priority"]),
      host,
      port: Number(m[2]),
      sock,
    } satisfies Data,
  );
  this.logs_up_to(level);
};

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  const s = this.data;
  if (level > s.level) return DECLINED;
  const pri = s.facility * 8 + (s.priority ?? Math.max(0, Math.min(7, level)));
  const where = `${hook ? `(${hook}) ` : ""}${plugin ? `${plugin}: ` : ""}`;
  const d = new Date();
  const stamp = `${strftime("%b", d)} ${String(d.getDate()).padStart(2, " ")} ${strftime("%T", d)}`;
  for (const line of message.split("\n")) {
    const text = `<${pri}>${stamp} ${HOST} ${s.ident}[${process.pid}]: ${conn ? `${conn} ` : ""}${where}${line}`;
    s.sock.send(Buffer.from(text), s.port, s.host);
  }
  return DECLINED;
};
