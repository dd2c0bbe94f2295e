/**
 * noop_counter: disconnects after too many NOOPs in a row; any other command resets the count.
 *
 * Hooks: noop, and helo, ehlo, mail, rcpt, data, reset_transaction, vrfy, help (to reset).
 * Arguments: the limit (default 3). Load it early so the resets see every command.
 * Notes: connection `noop_count`.
 * Replies: `500 Stop wasting my time, too many consecutive NOOPs` and disconnect.
 */
import { DECLINED, DENY_DISCONNECT, type HookContext, type Hooks, type Result, type Transaction } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** Consecutive NOOPs. */
    noop_count: number;
  }
}

export const hook_noop: Hooks["noop"] = function () {
  const n = (this.connection.notes("noop_count") ?? 0) + 1;
  this.connection.notes("noop_count", n);
  const max = /^\d+$/.test(this.args[0] ?? "") ? Number(this.args[0]) : 3;
  return n >= max ? [DENY_DISCONNECT, "Stop wasting my time, too many consecutive NOOPs"] : DECLINED;
};

function reset(this: HookContext, _txn: Transaction): Result {
  this.connection.notes("noop_count", 0);
  return DECLINED;
}

export const hook_helo = reset;
export const hook_ehlo = reset;
export const hook_mail = reset;
export const hook_rcpt = reset;
export const hook_data = reset;
export const hook_reset_transaction = reset;
export const hook_vrfy = reset;
export const hook_help = reset;
