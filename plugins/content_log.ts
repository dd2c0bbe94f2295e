/**
 * content_log: appends a copy of every message to an archive file (mbox format), when enabled.
 *
 * Hooks: data_post. Arguments: none (a word other than the engine's `timeout` and
 * `loglevel` stops start-up).
 * Config files: `content_log_enabled` (1 to enable), `content_log_file` (strftime name, default
 * `mail/%Y%m%d`, relative to the working directory).
 * Each message is written as `From <sender> <date>`, the header, the body (lines starting with
 * `From ` are quoted as `>From `), and a blank line.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { DECLINED, type Hooks, linesOf, LOGERROR, parsePluginArgs, type Register, strftime } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("content_log", words, {});
};

export const hook_data_post: Hooks["data_post"] = async function (txn) {
  if (!/^(1|yes|true|on)$/i.test(this.qp.config("content_log_enabled") ?? "")) return DECLINED;
  const now = new Date();
  const path = strftime(this.qp.config("content_log_file") ?? "mail/%Y%m%d", now);
  try {
    fs.mkdirSync(dirname(path), { recursive: true });
    const fh = await fs.promises.open(path, "a", 0o600);
    try {
      // Streamed a line at a time, in 64 kB writes: the message is never all in memory.
      let out = `From ${txn.sender()?.address() || "MAILER-DAEMON"} ${now.toUTCString()}\n`;
      let last = "";
      for await (const line of linesOf(txn.message_stream())) {
        out += line.startsWith("From ") ? `>${line}` : line;
        last = line;
        if (out.length > 65536) {
          await fh.write(out);
          out = "";
        }
      }
      await fh.write(`${out}${last.endsWith("\n") ? "" : "\n"}\n`);
    } finally {
      await fh.close();
    }
  } catch (e) {
    this.log(LOGERROR, `cannot write ${path}: ${(e as Error).message}`);
  }
  return DECLINED;
};
