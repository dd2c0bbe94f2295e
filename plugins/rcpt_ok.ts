/**
 * rcpt_ok: accepts recipients in the domains we receive mail for (qmail's rcpthosts rules).
 * It must be the last rcpt plugin.
 *
 * Hooks: rcpt. Arguments: none but `loglevel` (any other word stops start-up).
 * Config files: `rcpthosts` (a domain, or `.example.org` for every subdomain), `morercpthosts`
 * (more domains, a flat file here), `me`. Domains compare in their ASCII (a-label) form, so an IDN
 * recipient sent with SMTPUTF8 (`bücher.example`) matches `xn--bcher-kva.example` and the reverse.
 * Replies: OK for relay clients (relay or AUTH; a whitelisted sender or host is not enough,
 * since sender addresses are forged at will); OK when the recipient's domain is local
 * and its local part has no routing characters (`%`, `!`, `@`); OK for a bare `<postmaster>`;
 * otherwise `550 Relaying denied (#5.7.1)`.
 */
import { asciiDomain, DECLINED, DENY, type Hooks, LOGINFO, OK, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("rcpt_ok", words, {});
};

export const hook_rcpt: Hooks["rcpt"] = function (_txn, rcpt) {
  if (this.connection.relay_client()) return OK;
  const host = rcpt.asciiHost();
  if (host === undefined) {
    // <postmaster> without a domain must always be accepted (RFC 5321 4.5.1).
    return /^postmaster$/i.test(rcpt.user) ? OK : DECLINED;
  }
  if (/[%!@]/.test(rcpt.user)) {
    // Routing through the local part: leave it to no next hop (Postfix and Exim refuse these too).
    this.log(LOGINFO, `fail, routing characters in ${rcpt}`);
    return [DENY, "Relaying denied (#5.7.1)"];
  }
  if (isLocal(host, this.qp.me, this.qp.config_all("rcpthosts"), this.qp.config_all("morercpthosts"))) return OK;
  this.log(LOGINFO, `fail, ${host} is not a local domain`);
  return [DENY, "Relaying denied (#5.7.1)"];
};

/** Whether `host` (a-label form, lower case) is `me` or listed. */
export function isLocal(host: string, me: string, rcpthosts: readonly string[], more: readonly string[]): boolean {
  if (host === asciiDomain(me)) return true;
  for (const raw of [...rcpthosts, ...more]) {
    const entry = raw.startsWith(".") ? `.${asciiDomain(raw.slice(1))}` : asciiDomain(raw);
    if (entry === host) return true;
    if (entry.startsWith(".") && host.endsWith(entry)) return true;
  }
  return false;
}
