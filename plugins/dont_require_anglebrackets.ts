/**
 * dont_require_anglebrackets: accepts `MAIL FROM:user@host` and `RCPT TO:user@host` from broken
 * clients by adding the missing `<>`. The address is then parsed and checked as usual.
 *
 * Hooks: mail_pre, rcpt_pre. No config, no arguments (a word other than the
 * engine's `timeout` and `loglevel` stops start-up).
 */
import { DECLINED, type Hooks, OK, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("dont_require_anglebrackets", words, {});
};

function addBrackets(addr: string): readonly [typeof OK, string] | typeof DECLINED {
  return addr.startsWith("<") ? DECLINED : [OK, `<${addr}>`];
}

export const hook_mail_pre: Hooks["mail_pre"] = (_txn, addr) => addBrackets(addr);
export const hook_rcpt_pre: Hooks["rcpt_pre"] = (_txn, addr) => addBrackets(addr);
