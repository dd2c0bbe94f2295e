/**
 * rcpt_map: answers recipients of one domain from a map file: known addresses get the code the
 * file gives, unknown ones get the default.
 *
 * Hooks: rcpt.
 * Arguments: `domain DOMAIN file PATH [default CODE=MESSAGE]` (the message uses `_` for spaces;
 * default `DENY=No_such_user.`). Load it once per domain with `rcpt_map:N`. Any other word (but
 * the engine's `timeout` and `loglevel`) stops start-up.
 * The file: lines of `address CODE [message]` (`address` is `user@domain` or just `user`);
 * CODE a return-code name. It is re-read when it changes.
 * Recipients of other domains are left alone (DECLINED).
 */
import * as fs from "node:fs";
import {
  DECLINED,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  OK,
  parsePluginArgs,
  type Result,
  return_code,
  type ReturnCode,
} from "qpsmtpd";

interface MapState {
  mtimeMs: number;
  map: Map<string, [ReturnCode, string | undefined]>;
}

interface Data {
  /** The answer for an address the map does not list. */
  fallback: [ReturnCode, string | undefined];
  /** The map as last read. */
  state?: MapState;
}

export const register: Init<Data> = function (_server, ...words) {
  // The hook and load() read the same pairs from this.options.
  const o = parsePluginArgs("rcpt_map", words, { values: ["domain", "file", "default"] }).values;
  if (!o["domain"] || !o["file"]) throw new Error("rcpt_map needs `domain DOMAIN file PATH`");
  const [codeName, msg] = (o["default"] ?? "DENY=No_such_user.").split("=");
  const code = return_code(codeName ?? "");
  if (code === undefined) throw new Error(`rcpt_map: unknown default code ${codeName}`);
  this.data.fallback = [code, msg?.replace(/_/g, " ")];
  load(this);
};

function load(p: { readonly options: Readonly<Record<string, string>>; readonly data: Partial<Data>; log: HookContext["log"] }): MapState {
  const file = p.options["file"]!;
  const st = fs.statSync(file);
  const old = p.data.state;
  if (old && old.mtimeMs === st.mtimeMs) return old;
  const map = new Map<string, [ReturnCode, string | undefined]>();
  fs.readFileSync(file, "utf8").split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    const code = m ? return_code(m[2]!) : undefined;
    if (!m || code === undefined) {
      p.log(LOGERROR, `${file}:${i + 1}: expected "address CODE [message]"`);
      return;
    }
    map.set(m[1]!.toLowerCase(), [code, m[3]]);
  });
  const state = { mtimeMs: st.mtimeMs, map };
  p.data.state = state;
  return state;
}

export const hook_rcpt: Hooks<Data>["rcpt"] = function (_txn, rcpt): Result {
  const domain = this.options["domain"]!.toLowerCase();
  if (rcpt.host?.toLowerCase() !== domain) return DECLINED;
  let state: MapState;
  try {
    state = load(this);
  } catch (e) {
    this.log(LOGERROR, `cannot read ${this.options["file"]}: ${(e as Error).message}`);
    return DECLINED;
  }
  const hit = state.map.get(rcpt.address().toLowerCase()) ?? state.map.get(rcpt.user.toLowerCase());
  const [code, msg] = hit ?? this.data.fallback;
  if (code === OK || code === DECLINED) return code;
  return msg ? [code, msg] : code;
};
