/**
 * logging/warn: writes log lines at or below a level to stderr as
 * `PID connection (hook) plugin: message`. Load it from `config/logging`.
 *
 * Hooks: logging.
 * Arguments: the highest level to write, as a number (0-7) or a name (`LOGINFO`); default LOGWARN.
 */
import { DECLINED, formatLogLine, type Hooks, type Init, LOGWARN, parseLogLevel } from "qpsmtpd";

interface Data {
  level: number;
}

export const init: Init<Data> = function (_server, level) {
  const n = level === undefined ? LOGWARN : parseLogLevel(level);
  if (n === undefined) throw new Error(`logging/warn: "${level}" is not a log level`);
  this.data.level = n;
};

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, conn) {
  if (level > this.data.level || plugin === this.plugin_name()) return DECLINED;
  process.stderr.write(formatLogLine(hook, plugin, message, conn));
  return DECLINED;
};
