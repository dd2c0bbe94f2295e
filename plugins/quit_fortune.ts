/**
 * quit_fortune: answers QUIT with a fortune cookie, for clients that greeted with HELO only (so
 * automated ESMTP senders are not slowed down), when `fortune` is installed.
 *
 * Hooks: quit.
 * Arguments: the fortune program (default /usr/games/fortune).
 * Replies: `221` with the fortune's lines, then disconnect.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { DECLINED, DONE, type Hooks } from "qpsmtpd";

export const hook_quit: Hooks["quit"] = async function () {
  if (this.connection.hello !== "helo") return DECLINED;
  const prog = this.args[0] ?? "/usr/games/fortune";
  if (!fs.existsSync(prog)) return DECLINED;
  const text = await new Promise<string>((resolve) =>
    execFile(prog, ["-s"], { timeout: 2000, maxBuffer: 65536 }, (err, out) => resolve(err ? "" : String(out)))
  );
  const lines = text.split("\n").map((l) => l.replace(/\s+$/, "")).filter(Boolean);
  if (lines.length === 0) return DECLINED;
  this.qp.respond(221, ...lines);
  return DONE;
};
