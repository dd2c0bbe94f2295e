/**
 * queue/discard: accepts every message and throws it away. For benchmarks and tests only: it
 * warns at start-up and again every 1000 messages, and logs each drop at LOGINFO.
 *
 * Hooks: queue. No config, no arguments.
 * Replies: `250 Queued (discarded)`.
 */
import { type Hooks, type Init, LOGINFO, LOGWARN, OK, parsePluginArgs } from "qpsmtpd";

export const register: Init = function (_server, ...words) {
  parsePluginArgs("queue/discard", words, {});
  this.log(LOGWARN, "queue/discard is loaded: every accepted message will be THROWN AWAY");
};

let discarded = 0;

export const hook_queue: Hooks["queue"] = function (txn) {
  this.log(LOGINFO, `DISCARDED message from ${txn.sender()} to ${txn.recipients().length} recipient(s), ${txn.data_size()} bytes`);
  if (++discarded % 1000 === 0) this.log(LOGWARN, `${discarded} messages DISCARDED so far`);
  return [OK, "Queued (discarded)"];
};
