/**
 * count_unrecognized_commands: disconnects a client after too many unrecognized commands.
 *
 * Hooks: unrecognized_command.
 * Arguments: the limit (default 4). Any other word (but the engine's `timeout` and `loglevel`)
 * stops start-up.
 * Notes: connection `unrec_cmd_count`.
 * Replies: at the limit, `521 Closing connection, N unrecognized commands. Perhaps you should
 * read RFC 2821?` and disconnect; below it, the core's `500 Unrecognized command`.
 */
import { DECLINED, DENY_DISCONNECT, type Hooks, LOGINFO, parsePluginArgs, type Register } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** Unrecognized commands so far. */
    unrec_cmd_count: number;
  }
}

interface Data {
  limit: number;
}

export const register: Register<Data> = function (_server, ...words) {
  const given = parsePluginArgs("count_unrecognized_commands", words, { positional: [0, words.length], usage: "LIMIT" }).positional;
  // One LIMIT: the first word that is not a number, or a second word, is the mistake.
  const odd = given.find((w, i) => i > 0 || !/^\d+$/.test(w));
  if (odd !== undefined) throw new Error(`count_unrecognized_commands: unknown argument "${odd}" (it takes: LIMIT, a number)`);
  const word = given[0];
  this.data.limit = Number(word ?? 4) || 4; // qpsmtpd's `shift || 4`: 0 is the default too
};

export const hook_unrecognized_command: Hooks<Data>["unrecognized_command"] = function (_txn, cmd) {
  const limit = this.data.limit;
  const count = (this.connection.notes("unrec_cmd_count") ?? 0) + 1;
  this.connection.notes("unrec_cmd_count", count);
  this.log(LOGINFO, `unrecognized command '${cmd}' (${count} of ${limit})`);
  if (count < limit) return DECLINED;
  return [DENY_DISCONNECT, `Closing connection, ${count} unrecognized commands.  Perhaps you should read RFC 2821?`];
};
