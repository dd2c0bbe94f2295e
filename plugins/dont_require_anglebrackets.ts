/**
 * dont_require_anglebrackets: accepts `MAIL FROM:user@host` and `RCPT TO:user@host` from broken
 * clients by adding the missing `<>`. The address is then parsed and checked as usual.
 *
 * Hooks: mail_pre, rcpt_pre. No config, no arguments.
 */
import { DECLINED, type Hooks, OK } from "qpsmtpd";

function addBrackets(addr: string): readonly [typeof OK, string] | typeof DECLINED {
  return addr.startsWith("<") ? DECLINED : [OK, `<${addr}>`];
}

export const hook_mail_pre: Hooks["mail_pre"] = (_txn, addr) => addBrackets(addr);
export const hook_rcpt_pre: Hooks["rcpt_pre"] = (_txn, addr) => addBrackets(addr);
