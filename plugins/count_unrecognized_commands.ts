/**
 * count_unrecognized_commands: disconnects a client after too many unrecognized commands.
 *
 * Hooks: unrecognized_command.
 * Arguments: the limit (default 4).
 * Notes: connection `unrec_cmd_count`.
 * Replies: at the limit, `521 Closing connection, N unrecognized commands. Perhaps you should
 * read RFC 2821?` and disconnect; below it, the core's `500 Unrecognized command`.
 */
import { DECLINED, DENY_DISCONNECT, type Hooks, LOGINFO } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** Unrecognized commands so far. */
    unrec_cmd_count: number;
  }
}

export const hook_unrecognized_command: Hooks["unrecognized_command"] = function (_txn, cmd) {
  const limit = Number(this.args[0] ?? 4) || 4;
  const count = (this.connection.notes("unrec_cmd_count") ?? 0) + 1;
  this.connection.notes("unrec_cmd_count", count);
  this.log(LOGINFO, `unrecognized command '${cmd}' (${count} of ${limit})`);
  if (count < limit) return DECLINED;
  return [DENY_DISCONNECT, `Closing connection, ${count} unrecognized commands.  Perhaps you should read RFC 2821?`];
};
