/**
 * rhsbl: looks the sender's domain up in right-hand-side block lists.
 *
 * Hooks: mail.
 * Config files: `rhsbl_zones`: `zone [message]` a line.
 * Arguments: `reject 0|1|naughty` (default 1), `reject_type`, `loglevel`.
 * Skips the null sender and relay clients; lookup failures count as not listed.
 * Replies: `550 Mail from <domain> rejected because it <TXT or message>`.
 */
import { DECLINED, type Hooks, LOGINFO, LOGWARN } from "qpsmtpd";

export const hook_mail: Hooks["mail"] = async function (_txn, sender) {
  if (sender.isNull() || !sender.host || this.is_immune()) return DECLINED;
  const host = sender.host.toLowerCase();
  const zones = this.qp.config_all("rhsbl_zones");
  const hits = await Promise.all(zones.map(async (line) => {
    const [zone, ...msg] = line.split(/\s+/);
    const name = `${host}.${zone}`;
    try {
      if ((await this.dns.resolve_a(name)).length === 0) return undefined;
      const why = msg.join(" ") || (await this.dns.resolve_txt(name).catch(() => []))[0] || `is listed in ${zone}`;
      return `Mail from ${host} rejected because it ${why}`;
    } catch (e) {
      this.log(LOGWARN, `lookup of ${name} failed: ${(e as Error).message}`);
      return undefined;
    }
  }));
  const hit = hits.find((h) => h !== undefined);
  if (!hit) {
    this.log(LOGINFO, "pass");
    return DECLINED;
  }
  this.adjust_karma(-1);
  return this.get_reject(hit);
};
