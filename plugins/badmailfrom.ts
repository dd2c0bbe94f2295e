/**
 * badmailfrom: refuses senders listed in `badmailfrom` (qmail's file).
 *
 * Hooks: mail.
 * Config files: `badmailfrom`: `user@host`, `@host` (every sender at host), or a regular
 * expression (anchor it yourself); optionally followed by the reason to give.
 * Arguments: `reject 0|1|naughty` (default 1), `reject_type`, `loglevel`.
 * Skips relay clients and whitelisted senders, the null sender and `<postmaster>`.
 * Replies: `550 <reason>` (default "Your envelope sender is in my badmailfrom list"); karma -1.
 */
import { DECLINED, type Hooks, LOGINFO, matchesAddress, parseEntry, parsePluginArgs, type Register } from "qpsmtpd";

export const register: Register = function (_server, ...words) {
  parsePluginArgs("badmailfrom", words, { values: ["reject", "reject_type"] });
};

export const hook_mail: Hooks["mail"] = function (_txn, sender) {
  if (this.is_immune()) return DECLINED;
  const list = this.qp.config_all("badmailfrom");
  if (list.length === 0 || sender.isNull() || !sender.host || !sender.user) return DECLINED;
  const host = sender.host.toLowerCase();
  const from = `${sender.user.toLowerCase()}@${host}`;
  for (const line of list) {
    const e = parseEntry(line);
    if (!e || !matchesAddress(e.pattern, from, host)) continue;
    this.adjust_karma(-1);
    return this.get_reject(e.reason ?? "Your envelope sender is in my badmailfrom list", `${from} matches ${e.pattern}`);
  }
  this.log(LOGINFO, "pass");
  return DECLINED;
};
