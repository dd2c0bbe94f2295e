/**
 * bogus_bounce: a bounce (null sender) must have exactly one recipient and no Return-Path.
 *
 * Hooks: data_post.
 * Arguments: an action as the only argument (`log` (default), `deny`, `denysoft`), or
 * `reject 0|1|naughty` and `reject_type` pairs (qpsmtpd's). Both at once, or any other word (but
 * the engine's `timeout` and `loglevel`), stops start-up (qpsmtpd dropped the pairs after an
 * action).
 * Replies: `550 fail, this bounce message does not have 1 recipient`, `550 a bounce return path
 * must be empty (RFC 3834)` (451 with denysoft); `log` only logs.
 */
import { DECLINED, type HookContext, type Hooks, LOGINFO, parsePluginArgs, type Register } from "qpsmtpd";

const ACTIONS = ["log", "deny", "denysoft"] as const;

interface Data {
  /** The positional action, when given (else the `reject` pairs decide). */
  action?: (typeof ACTIONS)[number];
}

export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("bogus_bounce", words, { values: ["reject", "reject_type"], positional: [0, words.length] });
  const [first, ...extra] = a.positional;
  const action = ACTIONS.find((x) => x === first?.toLowerCase());
  const odd = first !== undefined && action === undefined ? first : extra[0];
  if (odd !== undefined) {
    throw new Error(`bogus_bounce: unknown argument "${odd}" (it takes: log|deny|denysoft, or reject VALUE, reject_type VALUE)`);
  }
  if (action !== undefined && (a.values.reject !== undefined || a.values.reject_type !== undefined)) {
    throw new Error(`bogus_bounce: give an action (${first}) or reject/reject_type, not both`);
  }
  if (action !== undefined) this.data.action = action;
};

function refuse(p: HookContext<Data>, msg: string): ReturnType<HookContext["get_reject"]> {
  const action = p.data.action;
  if (action !== undefined) {
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

export const hook_data_post: Hooks<Data>["data_post"] = function (txn) {
  if (!txn.sender()?.isNull()) return DECLINED;
  if (txn.recipients().length !== 1) return refuse(this, "fail, this bounce message does not have 1 recipient");
  const rp = txn.header()?.get("Return-Path", 0)?.trim();
  if (rp && rp !== "<>") return refuse(this, "a bounce return path must be empty (RFC 3834)");
  this.log(LOGINFO, "pass, single recipient, empty Return-Path");
  return DECLINED;
};
