/**
 * bogus_bounce: a bounce (null sender) must have exactly one recipient and no Return-Path.
 *
 * Hooks: data_post.
 * Arguments: an action as the only argument (`log` (default), `deny`, `denysoft`), or
 * `reject 0|1|naughty` and `reject_type` pairs.
 * Replies: `550 fail, this bounce message does not have 1 recipient`, `550 a bounce return path
 * must be empty (RFC 3834)` (451 with denysoft); `log` only logs.
 */
import { DECLINED, type HookContext, type Hooks, LOGINFO } from "qpsmtpd";

function refuse(p: HookContext, msg: string): ReturnType<HookContext["get_reject"]> {
  if (p.args.length % 2 === 1) {
    const action = p.args[0]!.toLowerCase();
    if (action === "deny" || action === "denysoft") return [p.get_reject_type(undefined, action === "denysoft" ? "temp" : "perm"), msg];
    p.log(LOGINFO, `fail, tolerated: ${msg}`);
    return [DECLINED];
  }
  if (p.options["reject"] === undefined) {
    p.log(LOGINFO, `fail, tolerated: ${msg}`);
    return [DECLINED];
  }
  return p.get_reject(msg);
}

export const hook_data_post: Hooks["data_post"] = function (txn) {
  if (!txn.sender()?.isNull()) return DECLINED;
  if (txn.recipients().length !== 1) return refuse(this, "fail, this bounce message does not have 1 recipient");
  const rp = txn.header()?.get("Return-Path", 0)?.trim();
  if (rp && rp !== "<>") return refuse(this, "a bounce return path must be empty (RFC 3834)");
  this.log(LOGINFO, "pass, single recipient, empty Return-Path");
  return DECLINED;
};
