/**
 * badrcptto: refuses recipients listed in `badrcptto`.
 *
 * Hooks: rcpt.
 * Config files: `badrcptto`: `user@host`, `@host`, or a regular expression (matched without
 * regard to case), optionally followed by a reason.
 * Arguments: none but `loglevel` (any other word stops start-up).
 * Skips relay clients and whitelisted senders.
 * Replies: `550 mail to <entry> not accepted here` (with `(#5.1.1)` when the line gives no
 * reason); karma -2.
 */
import { DECLINED, DENY, type Hooks, LOGINFO, matchesAddress, parseEntry, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("badrcptto", words, {});
};

export const hook_rcpt: Hooks["rcpt"] = function (_txn, rcpt) {
  if (this.is_immune()) return DECLINED;
  if (!rcpt.host || !rcpt.user) return DECLINED;
  const list = this.qp.config_all("badrcptto");
  if (list.length === 0) return DECLINED;
  const host = rcpt.host.toLowerCase();
  const to = `${rcpt.user.toLowerCase()}@${host}`;
  for (const line of list) {
    const e = parseEntry(line);
    if (!e || !matchesAddress(e.pattern, to, host, true)) continue;
    this.adjust_karma(-2);
    this.log(LOGINFO, `fail, ${to} matches ${e.pattern}`);
    const text = `mail to ${e.pattern.toLowerCase()} not accepted here`;
    return [DENY, e.reason ? text : `${text} (#5.1.1)`];
  }
  this.log(LOGINFO, "pass");
  return DECLINED;
};
