/**
 * badmailfromto: refuses a sender and recipient pair, as if the recipient did not exist.
 *
 * Hooks: mail (notes the sender's entries), rcpt. Arguments: none (a word other than the engine's `timeout` and
 * `loglevel` stops start-up).
 * Config files: `badmailfromto`: lines of `sender recipient` (whole addresses; sender may be a
 * regular expression as in badmailfrom).
 * Replies: `550 mail to <recipient> not accepted here (#5.1.1)`.
 */
import { DECLINED, DENY, type Hooks, LOGINFO, matchesAddress, parsePluginArgs, type Register } from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** Recipients this sender may not mail (lower case). */
    badmailfromto: string[];
  }
}

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("badmailfromto", words, {});
};

export const hook_mail: Hooks["mail"] = function (txn, sender) {
  if (sender.isNull() || !sender.host) return DECLINED;
  const from = sender.address().toLowerCase();
  const bad: string[] = [];
  for (const line of this.qp.config_all("badmailfromto")) {
    const [f, t] = line.split(/\s+/);
    if (f && t && matchesAddress(f, from, sender.host)) bad.push(t.toLowerCase());
  }
  if (bad.length) txn.notes("badmailfromto", bad);
  return DECLINED;
};

export const hook_rcpt: Hooks["rcpt"] = function (txn, rcpt) {
  const bad = txn.notes("badmailfromto");
  if (!bad) return DECLINED;
  const to = rcpt.address().toLowerCase();
  if (!bad.includes(to)) return DECLINED;
  this.log(LOGINFO, `fail, ${txn.sender()} may not mail ${to}`);
  return [DENY, `mail to ${to} not accepted here (#5.1.1)`];
};
