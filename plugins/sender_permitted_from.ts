/**
 * sender_permitted_from: SPF (RFC 7208). Checks whether the client may send for the domain of
 * the envelope sender, or for its HELO name when the sender is `<>` (RFC 7208 §2.4).
 *
 * Hooks: mail (the check, and the refusal when `reject` says so), data_post_headers (the
 * `Received-SPF` header at the top, as qpsmtpd writes it, and `spf=` in Authentication-Results),
 * data_post (with `no_dmarc_policy`: the second chance after the dmarc plugin).
 * Config files: `spfbehavior` (the `reject` level when the argument is not given).
 * Arguments (qpsmtpd's):
 *  - `reject N` (default 0, same as 1):
 *    1 annotate only; 2 also defer a DNS failure (temperror) and a fail; 3 refuse fail, defer
 *    softfail; 4 also refuse softfail, defer permerror; 5 also refuse neutral; 6 also refuse
 *    none and permerror (no record, or a broken one).
 *  - `spf_deny 1|2`: qpsmtpd's old argument, the same as `reject 3|4`.
 *  - `no_dmarc_policy N` (default 0): when the dmarc plugin found no DMARC record for the From
 *    domain, refuse at data_post on 1 fail, 2 also softfail, 3 also neutral, 4 also none and
 *    permerror. Meant for `reject 1` next to `dmarc`.
 *  - `loglevel`. Any other word stops start-up.
 * The check follows RFC 7208 exactly (mailauth's strict mode): 10 DNS-querying terms and 2 void
 * lookups at most (then permerror), 20 s for the whole evaluation (then temperror). Every lookup
 * goes through the server's resolver (`dns_servers`, `dns_timeout`, its cache).
 * Skipped: relay clients, authenticated users and whitelisted hosts or senders (`is_immune`);
 * qpsmtpd notes them as an SPF pass for dmarc.
 * Notes (transaction): `spfquery` (the whole outcome), `dmarc_spf` (domain, scope, result: what
 * the dmarc plugin aligns), `spf_pass_host` (the sender's domain on pass).
 * Replies: `550 SPF - forgery: <why>` (fail), `550 SPF - fail: <why>` (softfail),
 * `550 SPF - <result>: <why>`; deferrals are 450 with the same texts. `<why>` is the domain's
 * own explanation (`exp=`) on fail, else the local one.
 * Failure policy: a DNS server that does not answer gives temperror (deferred from level 2, else
 * accepted), a broken record permerror (refused only at level 6); the result is always logged.
 * Karma: +1 on pass, -1 on fail and softfail.
 */
import {
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LOGINFO,
  nodeStyleResolve,
  parsePluginArgs,
  type Resolver,
  type Result,
} from "qpsmtpd";

/** The results of RFC 7208 §2.6. */
export type SpfResult = "pass" | "fail" | "softfail" | "neutral" | "none" | "permerror" | "temperror";

/** One SPF check: what was asked and what it gave. */
export interface SpfOutcome {
  readonly result: SpfResult;
  /** `mfrom` (the envelope sender) or `helo` (the HELO name, for `<>`). */
  readonly scope: "mfrom" | "helo";
  /** The identity checked: `user@domain`, or the HELO name. */
  readonly identity: string;
  /** The domain whose policy was asked. */
  readonly domain: string;
  readonly ip: string;
  readonly helo: string;
  /** The local explanation: what the result means, for the log, the reply and Received-SPF. */
  readonly comment: string;
  /** The domain's own explanation (`exp=`), on fail only: third-party text. */
  readonly explanation?: string;
}

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The SPF check of the message (sender_permitted_from). */
    spfquery: SpfOutcome;
    /** What DMARC aligns: the domain checked, the scope and the SPF result (qpsmtpd's note). */
    dmarc_spf: { domain?: string; scope: "mfrom" | "helo"; result: string };
    /** The sender's domain, lower case, when SPF passed. */
    spf_pass_host: string;
  }
}

interface Data {
  reject: number;
  noDmarcPolicy: number;
}

export const init: Init<Data> = function (server, ...args) {
  const o = parsePluginArgs("sender_permitted_from", args, { values: ["reject", "spf_deny", "no_dmarc_policy"] }).values;
  const reject = o["reject"] ?? (o["spf_deny"] === "1" ? "3" : o["spf_deny"] === "2" ? "4" : server.config("spfbehavior") ?? "0");
  if (!/^[0-6]$/.test(reject)) throw new Error(`sender_permitted_from: reject "${reject}" is not a level from 0 to 6`);
  const ndp = o["no_dmarc_policy"] ?? "0";
  if (!/^[0-4]$/.test(ndp)) throw new Error(`sender_permitted_from: no_dmarc_policy "${ndp}" is not a level from 0 to 4`);
  this.data.reject = Number(reject);
  this.data.noDmarcPolicy = Number(ndp);
};

// ---- the check ----------------------------------------------------------------------------

export interface SpfRequest {
  /** The client's address. */
  readonly ip: string;
  /** The envelope sender `user@domain`; empty for `<>` (the HELO name is checked then). */
  readonly sender: string;
  readonly helo: string;
  /** Our host name, for the explanations. */
  readonly me: string;
}

// Imported when first needed, not at the top: mailauth takes 50-70 ms to load, which start-up
// need not wait for. The promise is kept: an import() of a loaded module still costs microseconds.
let mailauth: Promise<typeof import("mailauth")> | undefined;

/** RFC 7208 check_host() of the request's identity, through `dns`. Never throws. */
export async function checkSpf(dns: Resolver, req: SpfRequest): Promise<SpfOutcome> {
  const scope = req.sender ? "mfrom" : "helo";
  const { spf } = await (mailauth ??= import("mailauth"));
  const r = await spf({
    sender: req.sender || undefined,
    ip: req.ip,
    helo: req.helo,
    mta: req.me,
    resolver: nodeStyleResolve(dns) as never,
    strict: true,
    maxElapsedTime: 20_000,
  }) as { domain: string; status: { result: SpfResult; comment?: string }; explanation?: string };
  return {
    result: r.status.result,
    scope,
    identity: req.sender || req.helo,
    domain: r.domain,
    ip: req.ip,
    helo: req.helo,
    comment: r.status.comment ?? r.status.result,
    ...(r.explanation ? { explanation: r.explanation } : {}),
  };
}

/** Mail::SPF's Received-SPF: `result (comment) receiver=..; identity=..; ..; client-ip=..`. */
export function receivedSpf(o: SpfOutcome, receiver: string): string {
  const pairs: Array<[string, string]> = [["receiver", receiver], ["identity", o.scope === "mfrom" ? "mailfrom" : "helo"]];
  if (o.scope === "mfrom") pairs.push(["envelope-from", o.identity], ["helo", o.helo]);
  else pairs.push(["helo", o.helo]);
  pairs.push(["client-ip", o.ip]);
  const value = (v: string) => (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, "\\$1")}"`);
  const comment = o.comment.replace(/[()\\]/g, (c) => `\\${c}`).replace(/[\r\n]+/g, " ");
  return `${o.result} (${comment}) ${pairs.map(([k, v]) => `${k}=${value(v)}`).join("; ")}`;
}

/** qpsmtpd's answer for a result at a reject level. */
function decide(p: HookContext<Data>, o: SpfOutcome): Result {
  const level = p.data.reject;
  const why = (o.result === "fail" && o.explanation) || o.comment;
  const tolerated = () => (p.log(LOGINFO, `${o.result}, tolerated: ${why}`), DECLINED);
  switch (o.result) {
    case "pass":
      p.log(LOGINFO, `pass: ${why}`);
      return DECLINED;
    case "fail":
      if (level >= 3) return [DENY, `SPF - forgery: ${why}`];
      return level === 2 ? [DENYSOFT, `SPF - fail: ${why}`] : tolerated();
    case "softfail":
      if (level >= 4) return [DENY, `SPF - fail: ${why}`];
      return level === 3 ? [DENYSOFT, `SPF - fail: ${why}`] : tolerated();
    case "neutral":
      return level >= 5 ? [DENY, `SPF - neutral: ${why}`] : tolerated();
    case "none":
      return level >= 6 ? [DENY, `SPF - none: ${why}`] : tolerated();
    case "permerror":
      if (level >= 6) return [DENY, `SPF - permerror: ${why}`];
      return level >= 4 ? [DENYSOFT, `SPF - permerror: ${why}`] : tolerated();
    case "temperror":
      return level >= 2 ? [DENYSOFT, `SPF - temperror: ${why}`] : tolerated();
  }
}

export const hook_mail: Hooks<Data>["mail"] = async function (txn, sender) {
  if (this.is_immune()) {
    txn.notes("dmarc_spf", { domain: sender.host, scope: "mfrom", result: "pass" });
    return DECLINED;
  }
  const helo = this.connection.hello_host ?? "";
  const mailfrom = !sender.isNull() && sender.host !== undefined;
  const outcome = await checkSpf(this.dns, {
    ip: this.connection.remote_ip,
    // The local part unquoted, as %{l} expands it; an empty one becomes "postmaster" (§4.3).
    sender: mailfrom ? `${sender.user}@${sender.host}` : "",
    helo,
    me: this.qp.me,
  });
  txn.notes("spfquery", outcome);
  txn.notes("dmarc_spf", {
    domain: outcome.scope === "mfrom" ? sender.host!.toLowerCase() : helo,
    scope: outcome.scope,
    result: outcome.result,
  });
  if (outcome.result === "pass") {
    this.adjust_karma(1);
    if (mailfrom) txn.notes("spf_pass_host", sender.host!.toLowerCase());
  } else if (outcome.result === "fail" || outcome.result === "softfail") {
    this.adjust_karma(-1);
  }
  const answer = decide(this, outcome);
  if (answer !== DECLINED) this.log(LOGINFO, `${outcome.result}, refused at level ${this.data.reject}: ${outcome.comment}`);
  return answer;
};

// The Authentication-Results fragment is stored here, not at MAIL: during the mail hook the
// transaction has no sender yet, so store_auth_results would put it on the connection, where it
// would pile up over the connection's messages.
export const hook_data_post_headers: Hooks<Data>["data_post_headers"] = function (txn) {
  const o = txn.notes("spfquery");
  if (!o || this.is_immune()) return DECLINED;
  txn.header()?.add("Received-SPF", receivedSpf(o, this.qp.me), 0);
  this.store_auth_results(`spf=${o.result} ${o.scope === "mfrom" ? "smtp.mailfrom" : "smtp.helo"}=${authValue(o)}`);
  return DECLINED;
};

/** The property value of Authentication-Results: the domain (qpsmtpd), or the HELO name. */
function authValue(o: SpfOutcome): string {
  const v = o.scope === "mfrom" ? o.domain : o.helo;
  return /^[A-Za-z0-9.\-_[\]:]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, "\\$1")}"`;
}

/** The rank of an SPF result in `no_dmarc_policy`: refused from that level on. */
const NO_DMARC_LEVEL: Readonly<Partial<Record<SpfResult, number>>> = { fail: 1, softfail: 2, neutral: 3, none: 4, permerror: 4 };

export const hook_data_post: Hooks<Data>["data_post"] = function (txn) {
  if (this.data.noDmarcPolicy === 0 || this.is_immune()) return DECLINED;
  const o = txn.notes("spfquery");
  const dmarc = txn.notes("dmarc_result");
  // Only when the dmarc plugin ran and the From domain publishes no DMARC record at all.
  if (!o || !dmarc || dmarc.reason !== "no policy") return DECLINED;
  const level = NO_DMARC_LEVEL[o.result];
  if (level === undefined || level > this.data.noDmarcPolicy) return DECLINED;
  this.log(LOGINFO, `${o.result} and no DMARC policy: refused (no_dmarc_policy ${this.data.noDmarcPolicy})`);
  return [DENY, `SPF - ${o.result}: ${(o.result === "fail" && o.explanation) || o.comment}`];
};
