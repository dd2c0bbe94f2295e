/**
 * help: answers HELP from text files.
 *
 * Hooks: help.
 * Arguments: `help_dir DIR` (a file per command, lower case, and `default` for plain HELP);
 * `COMMAND FILE` pairs for single commands; `not_implemented 1` answers `502` instead.
 * Relative paths are relative to the config directory. Arguments are pairs; COMMAND is a word of
 * letters, digits and `-` (SMTP's keyword syntax), so a misspelt key such as `help_dri` stops
 * start-up, as does a word without its value.
 * Replies: `214` with the file's lines; `504 Unknown HELP topic` when there is none; `502
 * Not implemented` with not_implemented.
 */
import * as fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { DECLINED, DONE, type HookContext, type Hooks, type Register } from "qpsmtpd";

function path(p: HookContext, f: string): string {
  return isAbsolute(f) ? f : join(p.server.config_dir, f);
}

const KEYS = new Set(["not_implemented", "help_dir", "timeout", "loglevel"]);
const TAKES = "it takes: not_implemented VALUE, help_dir VALUE, COMMAND FILE";

// Not parsePluginArgs: any command word may be a key. The pairs are read by the hook.
export const register: Register = function (_server, ...words) {
  for (let i = 0; i < words.length; i += 2) {
    const key = words[i]!;
    if (!KEYS.has(key) && !/^[A-Za-z0-9-]+$/.test(key)) throw new Error(`help: unknown argument "${key}" (${TAKES})`);
    if (i + 1 >= words.length) throw new Error(`help: "${key}" needs a value (${TAKES})`);
  }
};

export const hook_help: Hooks["help"] = function (_txn, ...words) {
  const o = this.options;
  if (o["not_implemented"] === "1") {
    this.qp.respond(502, "Not implemented");
    return DONE;
  }
  const topic = (words[0] ?? "default").toLowerCase();
  if (!/^[a-z0-9_-]+$/.test(topic)) {
    this.qp.respond(504, "Unknown HELP topic");
    return DONE;
  }
  let file: string | undefined;
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === topic && k !== "help_dir") file = path(this, v);
  if (!file && o["help_dir"]) file = join(path(this, o["help_dir"]), topic);
  if (!file) return DECLINED;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    this.qp.respond(504, "Unknown HELP topic");
    return DONE;
  }
  this.qp.respond(214, ...text.replace(/\n$/, "").split("\n"));
  return DONE;
};
