/**
 * quit_fortune: answers QUIT with a fortune cookie, for clients that greeted with HELO only (so
 * automated ESMTP senders are not slowed down), when `fortune` is installed.
 *
 * Hooks: quit.
 * Arguments: the fortune program, a path (default /usr/games/fortune; qpsmtpd's has no
 * arguments). Any other word (but the engine's `timeout` and `loglevel`) stops start-up.
 * Replies: `221` with the fortune's lines, then disconnect.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { DECLINED, DONE, type Hooks, parsePluginArgs, type Register } from "qpsmtpd";

interface Data {
  prog: string;
}

export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("quit_fortune", words, { positional: [0, words.length], usage: "PROGRAM" });
  // One PROGRAM, a path: a word without a `/` is a mistake, not a program.
  const odd = a.positional.find((w, i) => i > 0 || !w.includes("/"));
  if (odd !== undefined) throw new Error(`quit_fortune: unknown argument "${odd}" (it takes: PROGRAM, a path)`);
  this.data.prog = a.positional[0] ?? "/usr/games/fortune";
};

// Synchronous where it declines (most sessions): only a fortune to tell waits for a program.
export const hook_quit: Hooks<Data>["quit"] = function () {
  const prog = this.data.prog;
  if (this.connection.hello !== "helo" || !fs.existsSync(prog)) return DECLINED;
  return new Promise<string>((resolve) =>
    execFile(prog, ["-s"], { timeout: 2000, maxBuffer: 65536 }, (err, out) => resolve(err ? "" : String(out)))
  ).then((text) => {
    const lines = text.split("\n").map((l) => l.replace(/\s+$/, "")).filter(Boolean);
    if (lines.length === 0) return DECLINED;
    this.qp.respond(221, ...lines);
    return DONE;
  });
};
