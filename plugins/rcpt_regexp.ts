/**
 * rcpt_regexp: answers recipients matching a pattern with a chosen code.
 *
 * Hooks: rcpt. Arguments: none (a word other than the engine's `timeout` and
 * `loglevel` stops start-up).
 * Config files: `rcpt_regexp`: lines of `PATTERN CODE [message]`, where PATTERN is `/regex/`
 * (with optional `i`) or an exact address, and CODE a return-code name (DENY, DENYSOFT, OK, …).
 * The first match wins.
 */
import { DECLINED, type Hooks, LOGERROR, parsePluginArgs, type Register, return_code } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("rcpt_regexp", words, {});
};

export const hook_rcpt: Hooks["rcpt"] = function (_txn, rcpt) {
  const addr = rcpt.address();
  for (const line of this.qp.config_all("rcpt_regexp")) {
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    const pat = m[1]!;
    const codeName = m[2]!;
    const msg = m[3];
    const code = return_code(codeName);
    if (code === undefined) {
      this.log(LOGERROR, `unknown return code ${codeName} in rcpt_regexp`);
      continue;
    }
    let hit: boolean;
    const rx = /^\/(.*)\/([i]?)$/.exec(pat);
    if (rx) {
      try {
        hit = new RegExp(rx[1]!, rx[2]).test(addr);
      } catch {
        this.log(LOGERROR, `bad pattern ${pat} in rcpt_regexp`);
        continue;
      }
    } else hit = pat.toLowerCase() === addr.toLowerCase();
    if (hit) return msg ? [code, msg] : code;
  }
  return DECLINED;
};
