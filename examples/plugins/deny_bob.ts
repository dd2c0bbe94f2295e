/**
 * deny_bob: refuses mail for any recipient whose local part is "bob".
 *
 * The example plugin from the README: a disk plugin, loaded from a directory listed in
 * `config/plugin_dirs` when `deny_bob` is a line of `config/plugins`. It imports the public API
 * from "qpsmtpd" and a helper of its own by a relative path.
 *
 * Hooks: rcpt. No config, no arguments.
 * Replies: `550 no mail for bob`; everything else is left to the next rcpt plugin.
 */
import { DECLINED, DENY, type Hooks, LOGINFO } from "qpsmtpd";
import { isBanned } from "./lib/banned.ts";

export const hook_rcpt: Hooks["rcpt"] = function (_txn, rcpt) {
  if (!isBanned(rcpt.user)) return DECLINED;
  this.log(LOGINFO, `refusing ${rcpt}`);
  return [DENY, "no mail for bob"];
};
