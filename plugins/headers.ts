/**
 * headers: checks the message header: required fields, singular fields that appear twice, and
 * a Date too far in the past or future.
 *
 * Hooks: data_post.
 * Arguments: `require From,Date,…` (default From), `future N` and `past N` (days; unset = not
 * checked), `reject 0|1|naughty` (default 1), `reject_type` (default perm), `loglevel`. Any other
 * word stops start-up.
 * Singular fields: Date From Sender Reply-To To Cc Bcc Message-Id In-Reply-To References Subject.
 * Whitelisted and relay clients skip the field checks.
 * Replies: `550 We require a valid From header`, `550 Only one Subject header allowed. See RFC
 * 5322, Section 3.6`, `550 The Date header is too far in the past|future`; karma -1 each.
 */
import { DECLINED, type Hooks, LOGINFO, parsePluginArgs, type Register } from "qpsmtpd";

const SINGULAR = ["Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-Id", "In-Reply-To", "References", "Subject"];

// qpsmtpd's arguments, read by the hook; any other word stops start-up.
export const register: Register = function (_server, ...words) {
  const a = parsePluginArgs("headers", words, { values: ["require", "future", "past", "reject", "reject_type"] });
  for (const k of ["future", "past"] as const) {
    const v = a.values[k];
    if (v !== undefined && !/^\d+(\.\d+)?$/.test(v)) throw new Error(`headers: ${k} is a number of days, not "${v}"`);
  }
};

export const hook_data_post: Hooks["data_post"] = function (txn) {
  if (txn.data_size() === 0) return this.get_reject("You must send some data first", "no data");
  const header = txn.header();
  if (!header) return this.get_reject("Headers are missing", "missing headers");
  if (this.is_immune()) return DECLINED;
  const errors: string[] = [];
  for (const h of (this.options["require"] ?? "From").split(",").filter(Boolean)) {
    if (!header.get(h, 0)?.trim()) errors.push(`We require a valid ${h} header`);
  }
  for (const h of SINGULAR) {
    if (header.count(h) > 1) errors.push(`Only one ${h} header allowed. See RFC 5322, Section 3.6`);
  }
  const date = header.get("Date", 0)?.trim();
  const when = date ? Date.parse(date) : NaN;
  const day = 24 * 3600 * 1000;
  const now = this.server.now();
  const past = Number(this.options["past"] ?? 0);
  const future = Number(this.options["future"] ?? 0);
  if (!Number.isNaN(when) && past > 0 && when < now - past * day) errors.push("The Date header is too far in the past");
  if (!Number.isNaN(when) && future > 0 && when > now + future * day) errors.push("The Date header is too far in the future");
  if (errors.length === 0) {
    this.log(LOGINFO, "pass");
    return DECLINED;
  }
  this.adjust_karma(-errors.length);
  return this.get_reject(errors[0], errors.join("; "));
};
