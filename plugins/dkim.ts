/**
 * dkim: verifies every DKIM-Signature of incoming mail (RFC 6376; rsa-sha256 and
 * ed25519-sha256, RFC 8463) and signs the mail of relay clients and authenticated users.
 *
 * Hooks: data_post_headers (verification, with `dkim=` in Authentication-Results per
 * signature; or signing, with the DKIM-Signature at the top), data_post (the refusal).
 * Arguments (qpsmtpd's): `reject 0|1|naughty` (default 1: refuse a message whose signatures all
 * fail), `reject_type` (default perm), `loglevel`. Any other word stops start-up.
 * Verification follows the RFCs exactly (mailauth's strict mode): a body or signed header that
 * changed is `fail`, an RSA key under 1024 bits is `fail` (RFC 8301), rsa-sha1 is `policy`, a
 * malformed signature or a missing key `neutral`/`permerror`, a DNS failure `temperror`. The
 * message is read from the spool as received, never whole into memory, and only its header when
 * that has no DKIM-Signature field (`none`); key lookups go through the server's resolver. The
 * message's verdict is the best signature's: pass, else fail, else temperror, else the first
 * other result, `none` without signatures.
 * Replies (with `reject` on): fail → `552 DKIM signature invalid: ...` (reject_type's code);
 * temperror → `452 Please try again later - DKIM key lookup failed`; other results are
 * accepted. Whitelisted hosts and senders are not verified.
 * Signing (relay clients, which includes authenticated users): relaxed/relaxed, rsa-sha256 or
 * ed25519-sha256 (by the key), over From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc,
 * MIME and List-* fields (mailauth's list). Keys as qpsmtpd lays them out:
 * `config/dkim/<domain>/private` (PEM) and `config/dkim/<domain>/selector`; a symlink
 * `config/dkim/<alias> -> <domain>` signs the alias's mail as `d=<domain>`; a subdomain without
 * a directory uses its parent's. The domain is the From field's (so DMARC aligns), else the
 * envelope sender's. `qpsmtpd dkim-keygen DOMAIN [SELECTOR]` writes a key and prints the DNS
 * record. No key: the message goes unsigned (logged). A key is never logged.
 * Notes (transaction): `dkim_result` (the verdict), `dkim_results` (each signature's domain,
 * selector and result, for dmarc), `dkim_pass_domains` (qpsmtpd's), `dkim_signing` (the key
 * used to sign, for arc).
 * Karma: +1 on pass, -1 on fail.
 */
import * as fs from "node:fs";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import {
  DECLINED,
  DENY,
  DENYSOFT,
  headerMayHave,
  type HookContext,
  type Hooks,
  isDomain,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  nodeStyleResolve,
  parsePluginArgs,
  type Register,
  type Result,
  type Transaction,
  withCrlf,
} from "qpsmtpd";

/** One signature's verdict, as dmarc reads it. */
interface SignatureResult {
  domain: string;
  selector: string;
  result: string;
}

/** The key a message was signed with. */
export interface SigningKey {
  readonly domain: string;
  readonly selector: string;
  /** The PEM file: its path only, never its content. */
  readonly key_file: string;
}

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The message's DKIM verdict: pass, fail, temperror, none, ... (dkim). */
    dkim_result: string;
    /** Every DKIM signature's verdict (dkim): signing domain, selector, result. */
    dkim_results: Array<{ domain: string; selector: string; result: string }>;
    /** The domains of the passing signatures (qpsmtpd's note). */
    dkim_pass_domains: string[];
    /** The key the message was signed with (dkim), for sealing (arc). */
    dkim_signing: SigningKey;
  }
}

// ---- verification ---------------------------------------------------------------------------

/**
 * The message as received (the original header block and the body), CRLF line ends (mailauth
 * would otherwise convert each line itself, at several times the cost); from memory while the
 * core holds it there (up to `size_threshold`), so a small message is not written to disk for this.
 */
function received(txn: Transaction): Readable {
  return Readable.from(withCrlf(txn.data_stream()));
}

interface MailauthSignature {
  signingDomain?: string;
  selector?: string;
  status: { result: string; comment?: string; policy?: Record<string, string> };
  info: string;
}

/** mailauth's answer for a message without a DKIM-Signature field (strict mode). */
const UNSIGNED: readonly MailauthSignature[] = [
  { status: { result: "none", comment: "message not signed" }, info: "dkim=none (message not signed)" },
];

/** RFC 8301 §3.2: a signature made with a key that is too short is not valid: fail, not policy. */
function normalise(r: MailauthSignature): { result: string; info: string } {
  if (r.status.result === "policy" && r.status.policy?.["dkim-rules"] === "weak-key") {
    return { result: "fail", info: r.info.replace(/^dkim=policy policy\.dkim-rules=weak-key/, "dkim=fail (key too short)") };
  }
  return { result: r.status.result, info: r.info };
}

// Imported when first needed, not at the top: mailauth takes 50-70 ms to load, which start-up
// need not wait for. The promise is kept: an import() of a loaded module still costs microseconds.
let mailauth: Promise<typeof import("mailauth")> | undefined;

const RANK = ["pass", "fail", "temperror"];

/** The message's verdict: the best signature's. */
function verdict(results: readonly string[]): string {
  for (const r of RANK) if (results.includes(r)) return r;
  return results[0] ?? "none";
}

async function verify(p: HookContext, txn: Transaction): Promise<void> {
  let res: { results: readonly MailauthSignature[] };
  try {
    // Without a DKIM-Signature field the verifier would read every byte only to say `none`.
    if (!(await headerMayHave(txn, ["DKIM-Signature"]))) res = { results: UNSIGNED };
    else {
      const { dkimVerify } = await (mailauth ??= import("mailauth"));
      res = await dkimVerify(received(txn), {
        resolver: nodeStyleResolve(p.dns) as never,
        strict: true,
        minBitLength: 1024,
        curTime: new Date(p.server.now()),
      } as never) as never;
    }
  } catch (e) {
    // Only a broken spool or a bug in the parser gets here: no verdict, the message goes on.
    p.log(LOGERROR, `verification failed: ${(e as Error).message}`);
    return;
  }
  const sigs = res.results.filter((r) => r.signingDomain !== undefined);
  const list: SignatureResult[] = [];
  for (const r of res.results) {
    const n = normalise(r);
    p.store_auth_results(n.info);
    if (r.signingDomain !== undefined) list.push({ domain: r.signingDomain.toLowerCase(), selector: r.selector ?? "", result: n.result });
  }
  const overall = sigs.length === 0 ? "none" : verdict(list.map((s) => s.result));
  txn.notes("dkim_result", overall);
  txn.notes("dkim_results", list);
  const passed = [...new Set(list.filter((s) => s.result === "pass").map((s) => s.domain))];
  if (passed.length) txn.notes("dkim_pass_domains", passed);
  if (overall === "pass") p.adjust_karma(1);
  else if (overall === "fail") p.adjust_karma(-1);
  const detail = list.map((s) => `${s.domain}/${s.selector}=${s.result}`).join(", ") || "no signature";
  p.log(overall === "temperror" ? LOGWARN : LOGINFO, `${overall}: ${detail}`);
}

// ---- signing ------------------------------------------------------------------------------

/** The key directory for `domain` (or its parent), following qpsmtpd's alias symlinks. */
export function findKey(dkimDir: string, domain: string): SigningKey | { missing: string } | undefined {
  const name = domain.toLowerCase().replace(/\.$/, "");
  // The domain comes from the message: only a real domain name may become a path.
  if (!isDomain(name)) return undefined;
  const labels = name.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const dir = join(dkimDir, labels.slice(i).join("."));
    let real: string;
    try {
      real = fs.realpathSync(dir);
      if (!fs.statSync(real).isDirectory()) continue;
    } catch {
      continue;
    }
    const keyFile = join(real, "private");
    let selector = "";
    try {
      selector = fs.readFileSync(join(real, "selector"), "utf8").split("\n")[0]!.trim();
    } catch { /* reported below */ }
    if (!selector) return { missing: join(real, "selector") };
    if (!fs.existsSync(keyFile)) return { missing: keyFile };
    // The alias's target names the signing domain (qpsmtpd: `ln -s example.org client.com`).
    return { domain: basename(real).toLowerCase(), selector, key_file: keyFile };
  }
  return undefined;
}

/** The domain of the first address of a From field, if any. */
function fromDomain(txn: Transaction): string | undefined {
  const from = txn.header()?.get("From", 0) ?? "";
  const m = /@([A-Za-z0-9.-]+)\s*>?\s*(?:$|[,;(])/m.exec(from.replace(/\([^)]*\)/g, ""));
  return m?.[1];
}

async function sign(p: HookContext, txn: Transaction): Promise<void> {
  const dkimDir = p.server.config_path("dkim") ?? join(p.server.config_dir, "dkim");
  const candidates = [fromDomain(txn), txn.sender()?.host].filter((d): d is string => !!d && !d.startsWith("["));
  let key: SigningKey | undefined;
  for (const d of candidates) {
    const found = findKey(dkimDir, d);
    if (found && "missing" in found) {
      p.log(LOGERROR, `cannot sign for ${d}: ${found.missing} is missing`);
      return;
    }
    if (found) {
      key = found;
      break;
    }
  }
  if (!key) {
    p.log(LOGINFO, `skip, no DKIM key in ${dkimDir} for ${candidates.join(" or ") || "this sender"}`);
    return;
  }
  let privateKey: string;
  try {
    privateKey = fs.readFileSync(key.key_file, "utf8");
  } catch (e) {
    p.log(LOGERROR, `cannot read the key ${key.key_file}: ${(e as NodeJS.ErrnoException).code}`);
    return;
  }
  const signature = { signingDomain: key.domain, selector: key.selector, privateKey };
  const { dkimSign } = await (mailauth ??= import("mailauth"));
  const res = await dkimSign(Readable.from(withCrlf(txn.message_stream())), {
    ...signature,
    canonicalization: "relaxed/relaxed",
    signTime: new Date(p.server.now()),
    strict: true, // refuses an RSA key under 1024 bits (RFC 8301)
    signatureData: [signature],
  }) as { signatures: string; errors: Array<{ err?: Error }> };
  const field = /^DKIM-Signature:\s*([\s\S]*?)\r?\n?$/i.exec(res.signatures);
  if (!field) {
    // The error names the key's file and domain, never its content.
    p.log(LOGERROR, `signing as ${key.domain} failed: ${res.errors.map((e) => e.err?.message ?? "unknown").join("; ")}`);
    return;
  }
  txn.header()?.add("DKIM-Signature", field[1]!.replace(/\r\n/g, "\n"), 0);
  txn.notes("dkim_signing", key);
  p.log(LOGINFO, `signed as d=${key.domain} s=${key.selector}`);
}

// ---- hooks ----------------------------------------------------------------------------------

// qpsmtpd's arguments (the hooks read them through `get_reject`); any other word stops start-up.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("dkim", words, { values: ["reject", "reject_type"] });
};

export const hook_data_post_headers: Hooks["data_post_headers"] = async function (txn) {
  if (this.connection.relay_client()) await sign(this, txn);
  else if (!this.is_immune()) await verify(this, txn);
  return DECLINED;
};

export const hook_data_post: Hooks["data_post"] = function (txn): Result {
  const v = txn.notes("dkim_result");
  if (v === "fail") {
    const failed = (txn.notes("dkim_results") ?? []).filter((s) => s.result === "fail").map((s) => s.domain);
    return this.get_reject(`DKIM signature invalid: ${[...new Set(failed)].join(", ")}`, "fail, invalid signature", DENY);
  }
  if (v === "temperror" && (this.options["reject"] ?? "1") !== "0") {
    this.log(LOGINFO, "temperror, deferred");
    return [DENYSOFT, "Please try again later - DKIM key lookup failed"];
  }
  return DECLINED;
};
