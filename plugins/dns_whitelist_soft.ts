/**
 * dns_whitelist_soft: marks clients listed in DNS whitelists, so that other plugins treat
 * them as immune (it never accepts mail by itself).
 *
 * Hooks: connect. Arguments: none (a word other than the engine's `timeout` and
 * `loglevel` stops start-up).
 * Config files: `whitelist_zones`: one zone a line.
 * Notes: sets connection `whitelisthost` (the zone's TXT text, or the zone).
 */
import { DECLINED, type Hooks, LOGINFO, LOGWARN, parsePluginArgs, type Register, reverseIp } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("dns_whitelist_soft", words, {});
};

export const hook_connect: Hooks["connect"] = async function () {
  const rev = reverseIp(this.connection.remote_ip);
  if (!rev) return DECLINED;
  for (const zone of this.qp.config_all("whitelist_zones")) {
    const name = `${rev}.${zone}`;
    try {
      if ((await this.dns.resolve_a(name)).length === 0) continue;
      const txt = (await this.dns.resolve_txt(name).catch(() => []))[0];
      this.connection.notes("whitelisthost", txt ?? zone);
      this.log(LOGINFO, `${this.connection.remote_ip} is whitelisted by ${zone}`);
      return DECLINED;
    } catch (e) {
      this.log(LOGWARN, `lookup of ${name} failed: ${(e as Error).message}`);
    }
  }
  return DECLINED;
};
