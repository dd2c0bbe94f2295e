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
  const d = localDomains(me, rcpthosts, more);
  if (d.exact.has(host)) return true;
  for (const suffix of d.suffixes) if (host.endsWith(suffix)) return true;
  return false;
}

interface LocalDomains {
  readonly me: string;
  readonly rcpthosts: readonly string[];
  readonly more: readonly string[];
  /** `me` and the listed domains, in a-label form. */
  readonly exact: ReadonlySet<string>;
  /** The `.example.org` entries, in a-label form with their dot. */
  readonly suffixes: readonly string[];
}

/** The last lists seen, in a-label form: the config reader hands out the same arrays until a file changes. */
let last: LocalDomains | undefined;

function localDomains(me: string, rcpthosts: readonly string[], more: readonly string[]): LocalDomains {
  if (last && last.me === me && last.rcpthosts === rcpthosts && last.more === more) return last;
  const exact = new Set([asciiDomain(me)]);
  const suffixes: string[] = [];
  for (const raw of [...rcpthosts, ...more]) {
    if (raw.startsWith(".")) suffixes.push(`.${asciiDomain(raw.slice(1))}`);
    else exact.add(asciiDomain(raw));
  }
  return last = { me, rcpthosts, more, exact, suffixes };
}
