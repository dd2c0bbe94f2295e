/**
 * rhsbl: looks the sender's domain up in right-hand-side block lists.
 *
 * Hooks: mail.
 * Config files: `rhsbl_zones`: `zone [message]` a line.
 * Arguments: `reject 0|1|naughty` (default 1), `reject_type`, `loglevel`.
 * Skips the null sender and relay clients; lookup failures count as not listed.
 * Replies: `550 Mail from <domain> rejected because it <TXT or message>`.
 */
import { DECLINED, type HookContext, type Hooks, LOGINFO, LOGWARN, parsePluginArgs, type Register, type Result } from "qpsmtpd";

export const register: Register = function (_server, ...words) {
  parsePluginArgs("rhsbl", words, { values: ["reject", "reject_type"] });
};

export const hook_mail: Hooks["mail"] = function (_txn, sender) {
  if (sender.isNull() || !sender.host || this.is_immune()) return DECLINED;
  const zones = this.qp.config_all("rhsbl_zones");
  // Nothing to look up: answer now rather than through a promise.
  if (zones.length === 0) {
    this.log(LOGINFO, "pass");
    return DECLINED;
  }
  return lookUp(this, sender.host.toLowerCase(), zones);
};

async function lookUp(p: HookContext, host: string, zones: readonly string[]): Promise<Result> {
  const hits = await Promise.all(zones.map(async (line) => {
    const [zone, ...msg] = line.split(/\s+/);
    const name = `${host}.${zone}`;
    try {
      if ((await p.dns.resolve_a(name)).length === 0) return undefined;
      const why = msg.join(" ") || (await p.dns.resolve_txt(name).catch(() => []))[0] || `is listed in ${zone}`;
      return `Mail from ${host} rejected because it ${why}`;
    } catch (e) {
      p.log(LOGWARN, `lookup of ${name} failed: ${(e as Error).message}`);
      return undefined;
    }
  }));
  const hit = hits.find((h) => h !== undefined);
  if (!hit) {
    p.log(LOGINFO, "pass");
    return DECLINED;
  }
  p.adjust_karma(-1);
  return p.get_reject(hit);
}
