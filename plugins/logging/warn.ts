/**
 * logging/warn: writes log lines at or below a level to stderr as
 * `PID connection (hook) plugin: message`. Load it from `config/logging`.
 *
 * Hooks: logging.
 * Arguments: the highest level to write, as a number (0-7) or a name (`LOGINFO`); default LOGWARN.
 */
import { DECLINED, LOGWARN, parseLogLevel, type Hooks, type Plugin, type PluginHost } from "qpsmtpd";
import { formatLogLine } from "../../src/core/logger.ts";

export function init(this: Plugin, _qp: PluginHost, level?: string): void {
  const n = level === undefined ? LOGWARN : parseLogLevel(level);
  if (n === undefined) throw new Error(`logging/warn: "${level}" is not a log level`);
  this.data["level"] = n;
}

export const hook_logging: Hooks["logging"] = function (_txn, level, hook, plugin, message) {
  if (level > (this.data["level"] as number) || plugin === this.plugin_name()) return DECLINED;
  process.stderr.write(formatLogLine(hook, plugin, message, String(this.data["conn_id"] ?? "")));
  return DECLINED;
};
