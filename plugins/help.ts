/**
 * help: answers HELP from text files.
 *
 * Hooks: help.
 * Arguments: `help_dir DIR` (a file per command, lower case, and `default` for plain HELP);
 * `COMMAND FILE` pairs for single commands; `not_implemented 1` answers `502` instead.
 * Relative paths are relative to the config directory.
 * Replies: `214` with the file's lines; `504 Unknown HELP topic` when there is none; `502
 * Not implemented` with not_implemented.
 */
import * as fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { DECLINED, DONE, type HookContext, type Hooks } from "qpsmtpd";

function path(p: HookContext, f: string): string {
  return isAbsolute(f) ? f : join(p.server.config_dir, f);
}

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
