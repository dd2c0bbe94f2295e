/**
 * queue/discard: accepts every message and throws it away. For benchmarks and tests only: it
 * warns at start-up and logs every message it drops.
 *
 * Hooks: queue. No config, no arguments.
 * Replies: `250 Queued (discarded)`.
 */
import { LOGWARN, OK, type Hooks, type Plugin, type PluginHost } from "qpsmtpd";

export function register(this: Plugin, qp: PluginHost): void {
  qp.log(LOGWARN, "queue/discard is loaded: every accepted message will be THROWN AWAY", "register", this.plugin_name());
}

export const hook_queue: Hooks["queue"] = function (txn) {
  this.log(LOGWARN, `DISCARDED message from ${txn.sender()} to ${txn.recipients().length} recipient(s), ${txn.data_size()} bytes`);
  return [OK, "Queued (discarded)"];
};
