/**
 * virus/klez_filter: refuses the Klez worm: in a message of 60 kB or more, an audio or
 * application part among the first 40 body lines followed by the worm's base64 signature.
 *
 * Hooks: data_post. No config, no arguments (a word other than the
 * engine's `timeout` and `loglevel` stops start-up).
 * Replies: `550 Klez Virus Detected`.
 */
import { DECLINED, DENY, type Hooks, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("virus/klez_filter", words, {});
};

export const hook_data_post: Hooks["data_post"] = async function (txn) {
  if (txn.data_size() < 60_000) return DECLINED;
  let n = 0;
  let seen = false;
  for await (const line of txn.body_lines()) {
    if (n++ > 40) break;
    if (/^Content-type:.*(?:audio|application)/i.test(line)) {
      seen = true;
      continue;
    }
    if (seen && line.startsWith("TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQA")) return [DENY, "Klez Virus Detected"];
  }
  return DECLINED;
};
