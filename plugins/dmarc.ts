/**
 * dmarc: DMARC (RFC 7489). Looks up the policy of the RFC5322.From domain, checks whether SPF
 * or DKIM passed for an aligned domain, and applies the policy.
 *
 * Hooks: data_post_headers (the evaluation, `dmarc=` in Authentication-Results, the
 * `X-DMARC-Disposition` header), data_post (the refusal). Load it after sender_permitted_from
 * and dkim, whose results it reads.
 * Arguments (qpsmtpd's): `reject 0|1|naughty` (default 1: refuse p=reject failures),
 * `reject_type` (default perm: `550 5.7.1`; temp, disconnect, temp_disconnect as usual),
 * `reporting` (accepted for qpsmtpd configs; no aggregate reports are sent, which is logged once
 * at start-up unless it is `reporting 0`), `loglevel`. Any other word stops start-up.
 * Policy: the record at `_dmarc.<From domain>`, else at `_dmarc.<organisational domain>` (the
 * Public Suffix List, ICANN and private sections, from the tldts package) whose `sp` (else `p`)
 * applies to subdomains. `adkim`/`aspf` `r` (default: same organisational domain) or `s` (the
 * same domain). `pct` below 100 applies the policy to that share of failing messages, the
 * others get the next weaker one (reject → quarantine → none).
 * Dispositions: reject → refused with `reject` on (`550 5.7.1 failed DMARC policy of DOMAIN`,
 * the enhanced code after EHLO);
 * quarantine → accepted with `X-DMARC-Disposition: quarantine (...)`, never deferred; a reject
 * not enforced (reject 0) is recorded the same way.
 * A message without a From field, with several, or with authors in several domains cannot
 * pass: permerror, refused with `reject` on (RFC 7489 §6.6.1).
 * Failure policy: a DNS failure while looking for the record gives temperror: logged, the
 * message is accepted (never deferred for DMARC); a broken record counts as no record.
 * Skipped: relay clients. Karma -3 when the policy applies (quarantine or reject).
 * Notes: reads transaction `dmarc_spf` (sender_permitted_from) and `dkim_results` (dkim); sets
 * transaction `dmarc_result`.
 */
import { domainToASCII } from "node:url";
import {
  DECLINED,
  DENY,
  DnsError,
  DONE,
  type HookContext,
  type Hooks,
  isDomain,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type Register,
  type Result,
} from "qpsmtpd";

type Policy = "none" | "quarantine" | "reject";

/** The outcome of the DMARC check of one message. */
export interface DmarcOutcome {
  readonly result: "pass" | "fail" | "none" | "temperror" | "permerror";
  /** The RFC5322.From domain. */
  readonly domain?: string;
  /** Where the record was found: the From domain or its organisational domain. */
  readonly policy_domain?: string;
  /** The policy that applies to this domain (`p`, or `sp` for a subdomain). */
  readonly policy?: Policy;
  /** What to do with this message (after `pct`). */
  readonly disposition: Policy;
  /** Why there is no verdict: `no policy`, `no From`, ... */
  readonly reason?: string;
  /** The aligned identifiers. */
  readonly spf_aligned?: string;
  readonly dkim_aligned?: string;
  /** Whether data_post refuses the message. */
  readonly enforce: boolean;
}

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The DMARC verdict (dmarc). */
    dmarc_result: DmarcOutcome;
    /** What DMARC aligns: the domain checked, the scope and the SPF result (qpsmtpd's note). */
    dmarc_spf: { domain?: string; scope: "mfrom" | "helo"; result: string };
    /** Every DKIM signature's verdict (dkim): signing domain, selector, result. */
    dkim_results: Array<{ domain: string; selector: string; result: string }>;
  }
}

// ---- From ---------------------------------------------------------------------------------

/**
 * The addr-specs of an address list (RFC 5322 §3.4): display names, comments, routes and group
 * names dropped. `"a@evil" <b@good>` gives `b@good`.
 */
export function parseAddresses(value: string): string[] {
  const out: string[] = [];
  let outside = ""; // the mailbox text outside <>: a display name or a bare addr-spec
  let inside: string | undefined; // the text inside <>
  let state: "text" | "quote" | "angle" | "literal" = "text";
  let comment = 0;
  const add = (c: string) => (inside !== undefined && state !== "text" ? (inside += c) : (outside += c));
  const flush = () => {
    const a = (inside ?? outside).trim().replace(/^(?:@[^:]*:)/, ""); // an obsolete route
    if (a !== "") out.push(a);
    outside = "";
    inside = undefined;
  };
  let angled = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (comment > 0) {
      if (c === "\\") i++;
      else if (c === "(") comment++;
      else if (c === ")") comment--;
      continue;
    }
    if (state === "quote") {
      if (c === "\\") add(c + (value[++i] ?? ""));
      else {
        add(c);
        if (c === '"') state = angled ? "angle" : "text";
      }
      continue;
    }
    if (state === "literal") {
      add(c);
      if (c === "]") state = angled ? "angle" : "text";
      continue;
    }
    if (c === "(") comment++;
    else if (c === '"') {
      add(c);
      state = "quote";
    } else if (c === "[") {
      add(c);
      state = "literal";
    } else if (state === "angle") {
      if (c === ">") {
        state = "text";
        angled = false;
      } else add(c);
    } else if (c === "<") {
      inside = "";
      state = "angle";
      angled = true;
    } else if (c === "," || c === ";") flush();
    else if (c === ":") outside = ""; // a group's name ends
    else add(c);
  }
  flush();
  return out;
}

/** The domain of an addr-spec, lower case and in A-labels; undefined when it has none. */
function domainOf(addr: string): string | undefined {
  const at = addr.lastIndexOf("@");
  if (at < 0) return undefined;
  const raw = addr.slice(at + 1).trim().replace(/\.$/, "");
  // The header is read as Latin-1 bytes: a UTF-8 domain is decoded, then made A-labels.
  const ascii = domainToASCII(Buffer.from(raw, "latin1").toString("utf8")).toLowerCase();
  return ascii !== "" && isDomain(ascii) ? ascii : undefined;
}

/** The one author domain, or why there is none. */
function authorDomain(fields: string[]): { domain: string } | { reason: string } {
  if (fields.length === 0) return { reason: "no From field" };
  if (fields.length > 1) return { reason: `${fields.length} From fields` };
  const addrs = parseAddresses(fields[0]!);
  if (addrs.length === 0) return { reason: "no address in From" };
  const domains = new Set(addrs.map(domainOf));
  if (domains.has(undefined)) return { reason: "an address in From has no valid domain" };
  if (domains.size > 1) return { reason: `authors in ${domains.size} domains` };
  return { domain: [...domains][0]! };
}

// ---- the record ---------------------------------------------------------------------------

interface DmarcRecord {
  p: Policy;
  sp?: Policy;
  adkim: "r" | "s";
  aspf: "r" | "s";
  pct: number;
}

const POLICIES = new Set(["none", "quarantine", "reject"]);

/** A record's tags (RFC 7489 §6.3); undefined when it is not a usable DMARC record. */
export function parseRecord(txt: string): DmarcRecord | undefined {
  const tags = new Map<string, string>();
  for (const part of txt.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const p = tags.get("p")?.toLowerCase();
  const sp = tags.get("sp")?.toLowerCase();
  let policy: Policy | undefined = p && POLICIES.has(p) ? p as Policy : undefined;
  if (!policy || (sp !== undefined && !POLICIES.has(sp))) {
    // §6.6.3 step 6: no valid p (or a bad sp) acts as p=none when reports are asked for.
    if (!/^\s*mailto:/i.test(tags.get("rua") ?? "")) return undefined;
    policy = "none";
  }
  const pct = /^\d{1,3}$/.test(tags.get("pct") ?? "") ? Math.min(100, Number(tags.get("pct"))) : 100;
  return {
    p: policy,
    ...(sp && POLICIES.has(sp) ? { sp: sp as Policy } : {}),
    adkim: tags.get("adkim")?.toLowerCase() === "s" ? "s" : "r",
    aspf: tags.get("aspf")?.toLowerCase() === "s" ? "s" : "r",
    pct,
  };
}

/** The record at `_dmarc.<domain>`: a record, none, or a thrown DnsError on a DNS failure. */
async function fetchRecord(p: HookContext, domain: string): Promise<DmarcRecord | undefined> {
  let txt: string[];
  try {
    txt = await p.dns.resolve(`_dmarc.${domain}`, "TXT");
  } catch (e) {
    if (e instanceof DnsError && !e.temporary) return undefined;
    throw e;
  }
  // §6.6.3 step 5: exactly one record starting with v=DMARC1, or none at all.
  const records = txt.filter((t) => /^v\s*=\s*DMARC1\s*(?:;|$)/.test(t.trim()));
  if (records.length !== 1) return undefined;
  return parseRecord(records[0]!);
}

// ---- the check ----------------------------------------------------------------------------

// Imported when first needed, not at the top: the Public Suffix List takes about 5 ms to load,
// which start-up need not wait for. The promise is kept: an import() of a loaded module still
// costs 1.5-3 µs in the executable, and this runs up to five times a message.
let tldts: Promise<typeof import("tldts")> | undefined;

export async function organisationalDomain(domain: string): Promise<string> {
  const { getDomain } = await (tldts ??= import("tldts"));
  return getDomain(domain, { allowPrivateDomains: true }) ?? domain;
}

async function aligned(mode: "r" | "s", author: string, id: string | undefined): Promise<boolean> {
  if (!id) return false;
  const d = id.toLowerCase().replace(/\.$/, "");
  return mode === "s" ? d === author : (await organisationalDomain(d)) === (await organisationalDomain(author));
}

const WEAKER: Readonly<Record<Policy, Policy>> = { reject: "quarantine", quarantine: "none", none: "none" };

async function evaluate(p: HookContext, from: string[], reject: boolean): Promise<DmarcOutcome> {
  const author = authorDomain(from);
  if ("reason" in author) return { result: "permerror", disposition: reject ? "reject" : "none", reason: author.reason, enforce: reject };
  const domain = author.domain;
  let record: DmarcRecord | undefined;
  let policyDomain = domain;
  try {
    record = await fetchRecord(p, domain);
    const org = await organisationalDomain(domain);
    if (!record && org !== domain) {
      record = await fetchRecord(p, org);
      policyDomain = org;
    }
  } catch (e) {
    return { result: "temperror", domain, disposition: "none", reason: (e as Error).message, enforce: false };
  }
  if (!record) return { result: "none", domain, disposition: "none", reason: "no policy", enforce: false };
  const policy = policyDomain === domain ? record.p : record.sp ?? record.p;
  const spf = p.transaction.notes("dmarc_spf");
  const spfAligned = spf?.result === "pass" && await aligned(record.aspf, domain, spf.domain) ? spf.domain : undefined;
  let dkimAligned: string | undefined;
  for (const r of p.transaction.notes("dkim_results") ?? []) {
    if (r.result === "pass" && await aligned(record.adkim, domain, r.domain)) {
      dkimAligned = r.domain;
      break;
    }
  }
  const base = { domain, policy_domain: policyDomain, policy, ...(spfAligned ? { spf_aligned: spfAligned } : {}) };
  if (spfAligned || dkimAligned) {
    return { ...base, result: "pass", disposition: "none", ...(dkimAligned ? { dkim_aligned: dkimAligned } : {}), enforce: false };
  }
  // §6.6.4: pct samples the failing messages the policy applies to.
  const disposition = record.pct >= 100 || Math.random() * 100 < record.pct ? policy : WEAKER[policy];
  return { ...base, result: "fail", disposition, enforce: reject && disposition === "reject" };
}

function authResults(o: DmarcOutcome): string {
  if (!o.domain) return `dmarc=${o.result} (${o.reason})`;
  const detail = o.policy ? ` (p=${o.policy} dis=${o.disposition})` : "";
  return `dmarc=${o.result}${detail} header.from=${o.domain}`;
}

// qpsmtpd's arguments (the hooks read `reject` and `reject_type` through `get_reject`); any other
// word stops start-up. `reporting` is accepted so qpsmtpd configs load, but nothing is sent.
export const register: Register = function (_server, ...words) {
  const a = parsePluginArgs("dmarc", words, { values: ["reject", "reject_type", "reporting"] });
  if (a.values.reporting !== undefined && a.values.reporting !== "0") {
    this.log(LOGWARN, `reporting ${a.values.reporting} has no effect: no aggregate reports are sent`);
  }
};

export const hook_data_post_headers: Hooks["data_post_headers"] = async function (txn) {
  if (this.connection.relay_client()) {
    this.log(LOGINFO, "skip, relay client");
    return DECLINED;
  }
  const header = txn.header();
  const reject = (this.options["reject"] ?? "1") !== "0";
  const o = await evaluate(this, header?.get("From") ?? [], reject);
  txn.notes("dmarc_result", o);
  this.store_auth_results(authResults(o));
  const where = o.domain ? `${o.domain} (record at ${o.policy_domain ?? "-"}, p=${o.policy ?? "-"})` : "";
  this.log(
    o.result === "temperror" ? LOGWARN : LOGINFO,
    `${o.result}${o.reason ? `, ${o.reason}` : ""}, disposition ${o.disposition} ${where}`,
  );
  if (o.result === "fail" && o.disposition !== "none") {
    this.adjust_karma(-3);
    const enforced = o.enforce ? "" : o.disposition === "reject" ? "; not enforced" : "";
    header?.add("X-DMARC-Disposition", `${o.disposition} (header.from=${o.domain} p=${o.policy}${enforced})`, 0);
  }
  return DECLINED;
};

export const hook_data_post: Hooks["data_post"] = function (txn): Result {
  const o = txn.notes("dmarc_result");
  if (!o?.enforce || this.is_immune()) return DECLINED;
  const msg = o.domain ? `failed DMARC policy of ${o.domain}` : `DMARC cannot be evaluated: ${o.reason}`;
  const [code, ...text] = this.get_reject(msg, `${o.result}, ${o.domain ?? o.reason}`);
  // RFC 7489 §7.3 and practice: 550 5.7.1, where data_post's DENY would answer 552. The
  // enhanced code goes to EHLO clients only (ENHANCEDSTATUSCODES is an ESMTP extension).
  if (code === DENY) {
    this.qp.respond_status(550, "5.7.1", text.join(" "));
    return DONE;
  }
  return [code, ...text];
};
