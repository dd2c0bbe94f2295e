/**
 * random_error: fails a percentage of connections and commands at random, to test how senders
 * cope with temporary errors. Never use it on a real server.
 *
 * Hooks: connect, helo, ehlo, mail, rcpt, data, data_post.
 * Arguments: the percentage (default 1; 0 or less never fails); connection note `random_fail_%`
 * overrides it. Any other word (but the engine's `timeout` and `loglevel`) stops start-up.
 * Replies: `450 Sorry, this is a random error` (DENYSOFT), or `421` and disconnect (one time in
 * ten among the failures).
 */
import {
  DECLINED,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  type HookContext,
  parsePluginArgs,
  type Register,
  type Result,
  type Transaction,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The failure rate for this connection, in percent (overrides the argument). */
    "random_fail_%": number | string;
  }
}

interface Data {
  percent: number;
}

export const register: Register<Data> = function (_server, ...words) {
  const given = parsePluginArgs("random_error", words, { positional: [0, words.length], usage: "PERCENT" }).positional;
  // One PERCENT: the first word that is not a number, or a second word, is the mistake.
  const odd = given.find((w, i) => i > 0 || !/^-?\d+(\.\d+)?$/.test(w));
  if (odd !== undefined) throw new Error(`random_error: unknown argument "${odd}" (it takes: PERCENT, a number)`);
  const word = given[0];
  this.data.percent = Number(word ?? 1);
};

function maybeFail(this: HookContext<Data>, _txn: Transaction, ..._args: unknown[]): Result {
  const pct = Number(this.connection.notes("random_fail_%") ?? this.data.percent);
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
