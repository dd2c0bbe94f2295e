/**
 * naughty: carries out the rejections other plugins deferred with `reject naughty`.
 *
 * Hooks: the one named by `reject` (connect, mail, rcpt (default), data or data_post), and
 * data_post as a safety net.
 * Arguments: `reject <hook>`, `reject_type` (default disconnect; a deferring plugin's own
 * reject_type wins), `loglevel`. Any other word stops start-up (an unknown hook for `reject` is
 * logged, and data_post used, as in qpsmtpd).
 * Notes read: connection `naughty` (the reply text), `naughty_reject_type`.
 * Relay clients and whitelisted hosts are immune (qpsmtpd #338); AUTH clears the note.
 */
import {
  DECLINED,
  DENY_DISCONNECT,
  type HookContext,
  type Init,
  LOGERROR,
  LOGINFO,
  parsePluginArgs,
  type Result,
  type Transaction,
} from "qpsmtpd";

const HOOKS = ["connect", "mail", "rcpt", "data", "data_post"] as const;

function naughty(this: HookContext, _txn: Transaction, ..._args: unknown[]): Result {
  const text = this.connection.notes("naughty");
  if (!text) return DECLINED;
  if (this.is_immune()) return DECLINED;
  this.log(LOGINFO, "disconnecting");
  return [this.get_reject_type(DENY_DISCONNECT, this.connection.notes("naughty_reject_type") ?? ""), text];
}

export const register: Init = function (_server, ...words) {
  const a = parsePluginArgs("naughty", words, { values: ["reject", "reject_type"] });
  const reject = (a.values.reject ?? "rcpt").toLowerCase();
  const hook = (HOOKS as readonly string[]).includes(reject) ? (reject as (typeof HOOKS)[number]) : undefined;
  if (!hook) this.log(LOGERROR, `invalid hook "${reject}"; using data_post`);
  if (hook && hook !== "data_post") this.register_hook(hook, naughty);
  this.register_hook("data_post", naughty);
};
