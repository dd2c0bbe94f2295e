/**
 * logging/devnull: discards every log line. Load it from `config/logging`.
 *
 * Hooks: logging. No arguments (a word other than the engine's `timeout` and `loglevel` stops
 * start-up).
 */
import { DECLINED, type Hooks, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("logging/devnull", words, {});
  this.logs_up_to(-1);
};

export const hook_logging: Hooks["logging"] = () => DECLINED;
