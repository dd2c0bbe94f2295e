/**
 * resolvable_fromhost: the sender's domain must be able to receive mail: it needs an MX, or
 * else an A or AAAA record, and none of them may point into the `invalid_resolvable_fromhost`
 * networks.
 *
 * Hooks: mail.
 * Config files: `invalid_resolvable_fromhost`: CIDRs that do not count (default 0.0.0.0/8,
 * 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 240.0.0.0/4, ::1/128).
 * Arguments: `reject 0|1|naughty` (default 1), `reject_type` (default temp, because DNS can be
 * wrong for a while), `loglevel`. Any other word stops start-up.
 * Skips the null sender and relay clients. A DNS failure is a temporary refusal only when
 * rejecting; it never stalls the session beyond the resolver's time limit.
 * Notes: transaction `resolvable_fromhost` (the result).
 * Replies: `450 FQDN required in the envelope sender`, `450 Could not resolve <domain>`.
 */
import { isIP } from "node:net";
import { cidrContains, DECLINED, DENYSOFT, type HookContext, type Hooks, LOGINFO, parsePluginArgs, type Register } from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The verdict on the sender's domain: pass, fail, literal or temperror. */
    resolvable_fromhost: "pass" | "fail" | "literal" | "temperror";
  }
}

const DEFAULT_INVALID = ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::1/128"];

async function addresses(p: HookContext, host: string): Promise<string[]> {
  const [a, aaaa] = await Promise.all([p.dns.resolve_a(host), p.dns.resolve_aaaa(host)]);
  return [...a, ...aaaa];
}

// qpsmtpd's arguments (the hook reads them through `get_reject`); any other word stops start-up.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("resolvable_fromhost", words, { values: ["reject", "reject_type"] });
};

export const hook_mail: Hooks["mail"] = async function (txn, sender) {
  if (sender.isNull() || this.is_immune()) return DECLINED;
  const host = (sender.host ?? "").toLowerCase();
  const reject = (msg: string) => {
    txn.notes("resolvable_fromhost", "fail");
    return this.get_reject(msg, `${host}: ${msg}`, DENYSOFT);
  };
  if (host.startsWith("[")) {
    txn.notes("resolvable_fromhost", "literal");
    return DECLINED;
  }
  if (!host.includes(".") || isIP(host)) return reject("FQDN required in the envelope sender");
  const invalid = this.qp.config_all("invalid_resolvable_fromhost");
  const bad = invalid.length ? invalid : DEFAULT_INVALID;
  try {
    const mx = await this.dns.resolve_mx(host);
    const targets = mx.length ? mx.map((m) => m.exchange) : [host];
    for (const t of targets) {
      const addrs = await addresses(this, t).catch(() => []);
      if (addrs.some((a) => !bad.some((c) => cidrContains(c, a)))) {
        txn.notes("resolvable_fromhost", "pass");
        this.log(LOGINFO, `pass, ${host} resolves`);
        return DECLINED;
      }
    }
  } catch (e) {
    this.log(LOGINFO, `skip, DNS error for ${host}: ${(e as Error).message}`);
    txn.notes("resolvable_fromhost", "temperror");
    return DECLINED;
  }
  this.adjust_karma(-1);
  return reject(`Could not resolve ${host}`);
};
