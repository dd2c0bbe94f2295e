/**
 * logging/syslog: sends log lines to syslog (RFC 3164 over UDP). Load it from `config/logging`.
 *
 * Hooks: logging.
 * Lines are `<PRI>Mmm dd hh:mm:ss HOST ident[pid]: CONNECTION (hook) plugin: message`.
 * Arguments: `loglevel L` (default LOGWARN), `ident NAME` (default qpsmtpd), `facility NAME`
 * (default LOG_MAIL), `priority NAME` (a fixed severity for every line instead of the line's
 * level), `logsock udp:HOST:PORT` (default udp:127.0.0.1:514; rsyslog needs its imudp module).
 */
import * as dgram from "node:dgram";
import { isIPv6 } from "node:net";
import { hostname } from "node:os";
import { DECLINED, type Hooks, type Init, parseLogLevel, strftime } from "qpsmtpd";

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

interface Data {
  level: number;
  ident: string;
  facility: number;
  priority: number | undefined;
  host: string;
  port: number;
  sock: dgram.Socket;
}

export const init: Init<Data> = function () {
  const o = this.options;
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
      priority: o["priority"] === undefined ? undefined : parseLogLevel(o["priority"]),
      host,
      port: Number(m[2]),
      sock,
    } satisfies Data,
  );
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
