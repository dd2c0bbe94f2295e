/**
 * loop: refuses a message with too many hops (Received plus Delivered-To fields), as
 * qmail-smtpd does.
 *
 * Hooks: data_post.
 * Arguments: the most hops allowed (default 100); anything but a number stops start-up.
 * Replies: `550 Too many hops. This message is looping. (#5.4.6)`.
 */
import { DECLINED, DENY, type Hooks, type Init, parsePluginArgs } from "qpsmtpd";

interface Data {
  /** The most hops allowed. */
  max: number;
}

export const init: Init<Data> = function (_server, ...words) {
  const [max] = parsePluginArgs("loop", words, { positional: [0, 1], usage: "MAX_HOPS" }).positional;
  if (max !== undefined && !/^\d+$/.test(max)) throw new Error(`loop: the most hops allowed is a number, not "${max}"`);
  this.data.max = max === undefined ? 100 : Number(max);
};

export const hook_data_post: Hooks<Data>["data_post"] = function (txn) {
  const h = txn.header();
  const hops = (h?.count("Received") ?? 0) + (h?.count("Delivered-To") ?? 0);
  // The core's own Received line is already there, so count hops before it.
  return hops - 1 >= this.data.max ? [DENY, "Too many hops. This message is looping. (#5.4.6)"] : DECLINED;
};
