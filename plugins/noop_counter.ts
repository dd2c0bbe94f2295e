/**
 * noop_counter: disconnects after too many NOOPs in a row; any other command resets the count.
 *
 * Hooks: noop, and helo, ehlo, mail, rcpt, data, reset_transaction, vrfy, help (to reset).
 * Arguments: the limit (default 3). Load it early so the resets see every command. Any other
 * word (but the engine's `timeout` and `loglevel`) stops start-up.
 * Notes: connection `noop_count`.
 * Replies: `500 Stop wasting my time, too many consecutive NOOPs` and disconnect.
 */
import {
  DECLINED,
  DENY_DISCONNECT,
  type HookContext,
  type Hooks,
  parsePluginArgs,
  type Register,
  type Result,
  type Transaction,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** Consecutive NOOPs. */
    noop_count: number;
  }
}

interface Data {
  max: number;
}

export const register: Register<Data> = function (_server, ...words) {
  const given = parsePluginArgs("noop_counter", words, { positional: [0, words.length], usage: "LIMIT" }).positional;
  // One LIMIT: the first word that is not a number, or a second word, is the mistake.
  const odd = given.find((w, i) => i > 0 || !/^\d+$/.test(w));
  if (odd !== undefined) throw new Error(`noop_counter: unknown argument "${odd}" (it takes: LIMIT, a number)`);
  const word = given[0];
  this.data.max = Number(word ?? 3) || 3; // qpsmtpd's: 0 is the default too
};

export const hook_noop: Hooks<Data>["noop"] = function () {
  const n = (this.connection.notes("noop_count") ?? 0) + 1;
  this.connection.notes("noop_count", n);
  return n >= this.data.max ? [DENY_DISCONNECT, "Stop wasting my time, too many consecutive NOOPs"] : DECLINED;
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
