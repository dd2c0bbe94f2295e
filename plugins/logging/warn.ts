/**
 * logging/warn: writes log lines at or below a level to stderr as
 * `PID connection (hook) plugin: message`. Load it from `config/logging`.
 *
 * Hooks: logging.
 * Arguments: the highest level to write, as a number (0-7) or a name (`LOGINFO`); default LOGWARN.
 * `loglevel L` says the same. Any other word stops start-up.
 */
import { DECLINED, formatLogLine, type Hooks, type Init, LOGWARN, parseLogLevel, parsePluginArgs } from "qpsmtpd";

interface Data {
  level: number;
}

export const init: Init<Data> = function (_server, ...args) {
  // The level alone (qpsmtpd's form), or as `loglevel L` like logging/file's and syslog's.
  const a = parsePluginArgs("logging/warn", args, { positional: [0, args.length], usage: "LEVEL" });
  if (a.positional.length > 1) {
    // One LEVEL: of two words, the one that is not a level is the mistake (`levl LOGINFO`).
    const odd = a.positional.find((w) => parseLogLevel(w) === undefined) ?? a.positional[1];
    throw new Error(`logging/warn: unknown argument "${odd}" (it takes: LEVEL, loglevel VALUE)`);
  }
  const level = a.positional[0] ?? a.values.loglevel;
  const n = level === undefined ? LOGWARN : parseLogLevel(level);
  if (n === undefined) throw new Error(`logging/warn: "${level}" is not a log level`);
  this.data.level = n;
  this.logs_up_to(n);
};

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  if (level > this.data.level || plugin === this.plugin_name()) return DECLINED;
  process.stderr.write(formatLogLine(hook, plugin, message, conn));
  return DECLINED;
};
