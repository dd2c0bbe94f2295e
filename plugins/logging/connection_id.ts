/**
 * logging/connection_id: qpsmtpd's demo of the connection id. It writes log lines at or below a
 * level to stderr as logging/warn does, but leads each with the connection's id instead of the
 * process id: `ID PLUGIN plugin: message`, `ID running plugin (HOOK): message`, or `ID message`
 * (`???` for the server's own lines). Load it from `config/logging`.
 *
 * Hooks: logging (the connection id is its last argument).
 * Arguments: `[LEVEL]`, the highest level written, a number (0-7) or a name; default LOGWARN.
 * `loglevel L` says the same. Any other word stops start-up.
 * Its own lines are not written (qpsmtpd's guard against loops).
 * Failure policy: none needed (stderr); a bad level stops start-up.
 * qpsmtpd 0.94's plugin died at load ("currently unsupported": Connection->id was removed);
 * here the id is the engine's.
 */
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, parsePluginArgs } from "qpsmtpd";

interface Data {
  level: number;
}

export const init: Init<Data> = function (_server, ...args) {
  // The level alone (qpsmtpd's form), or as `loglevel L` like logging/file's and syslog's.
  const a = parsePluginArgs("logging/connection_id", args, { positional: [0, args.length], usage: "LEVEL" });
  if (a.positional.length > 1) {
    // One LEVEL: of two words, the one that is not a level is the mistake (`levl LOGINFO`).
    const odd = a.positional.find((w) => parseLogLevel(w) === undefined) ?? a.positional[1];
    throw new Error(`logging/connection_id: unknown argument "${odd}" (it takes: LEVEL, loglevel VALUE)`);
  }
  const level = a.positional[0] ?? a.values.loglevel;
  const n = level === undefined ? LOGWARN : parseLogLevel(level);
  if (n === undefined) throw new Error(`logging/connection_id: "${level}" is not a log level`);
  this.data.level = n;
  this.logs_up_to(n);
};

/** qpsmtpd's line: the id, then `PLUGIN plugin:` or `running plugin (HOOK):`, then the message. */
export function qpsmtpdLine(id: string, hook: string, plugin: string, message: string): string {
  const who = plugin ? ` ${plugin} plugin:` : hook ? ` running plugin (${hook}):` : "";
  return `${id}${who} ${message}\n`;
}

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, connection_id) {
  if (level > this.data.level || plugin === this.plugin_name()) return DECLINED;
  process.stderr.write(qpsmtpdLine(connection_id || "???", hook, plugin, message));
  return DECLINED;
};
