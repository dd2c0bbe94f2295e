/**
 * random_error: fails a percentage of connections and commands at random, to test how senders
 * cope with temporary errors. Never use it on a real server.
 *
 * Hooks: connect, helo, ehlo, mail, rcpt, data, data_post.
 * Arguments: the percentage (default 1); connection note `random_fail_%` overrides it.
 * Replies: `450 Sorry, this is a random error` (DENYSOFT), or `421` and disconnect (one time in
 * ten among the failures).
 */
import { DECLINED, DENYSOFT, DENYSOFT_DISCONNECT, type HookContext, type Result, type Transaction } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The failure rate for this connection, in percent (overrides the argument). */
    "random_fail_%": number | string;
  }
}

function maybeFail(this: HookContext, _txn: Transaction, ..._args: unknown[]): Result {
  const pct = Number(this.connection.notes("random_fail_%") ?? this.args[0] ?? 1);
  if (!(Math.random() * 100 < pct)) return DECLINED;
  return [Math.random() < 0.1 ? DENYSOFT_DISCONNECT : DENYSOFT, "Sorry, this is a random error"];
}

export const hook_connect = maybeFail;
export const hook_helo = maybeFail;
export const hook_ehlo = maybeFail;
export const hook_mail = maybeFail;
export const hook_rcpt = maybeFail;
export const hook_data = maybeFail;
export const hook_data_post = maybeFail;
