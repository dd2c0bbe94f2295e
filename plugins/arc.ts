/**
 * arc: Authenticated Received Chain (RFC 8617). Verifies the ARC chain of incoming mail into
 * Authentication-Results, and seals the mail of relay clients with their DKIM key.
 *
 * Hooks: data_post_headers (verification: `arc=pass|fail|none` in Authentication-Results),
 * data_post (sealing: ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results at the
 * top; the AAR carries this message's own Authentication-Results).
 * Arguments: none but the engine's `timeout` and `loglevel` (any other word stops start-up). ARC never refuses mail: its result is for the filters after it.
 * Verification reads the message from the spool as received (never whole into memory; only its
 * header when that has no ARC field: `none`) and follows RFC 8617 exactly (mailauth's strict
 * mode); key lookups go through the server's resolver. A broken chain is `fail`, a missing key
 * `fail` (with a comment), a DNS failure `fail` too (RFC 8617: every ARC failure is final); each
 * is logged.
 * Sealing needs the dkim plugin: it seals with the key dkim signed the message with (transaction
 * note `dkim_signing`, from `config/dkim/<domain>/`); without one the message is not sealed
 * (logged). A message whose newest seal says cv=fail is not sealed again. A key is never logged.
 * Whitelisted hosts and senders are not verified.
 * Notes: transaction `arc_result` (pass, fail or none); reads `dkim_signing`.
 */
import * as fs from "node:fs";
import { Readable } from "node:stream";
import {
  DECLINED,
  headerMayHave,
  type HookContext,
  type Hooks,
  LOGERROR,
  LOGINFO,
  nodeStyleResolve,
  parsePluginArgs,
  type Register,
  type Transaction,
  withCrlf,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The ARC chain's verdict (arc): pass, fail or none. */
    arc_result: string;
  }
}

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("arc", words, {});
};

// ---- verification ---------------------------------------------------------------------------

/**
 * The message as received (the original header block and the body), CRLF line ends (mailauth
 * would otherwise convert each line itself, at several times the cost); from memory while the
 * core holds it there (up to `size_threshold`), so a small message is not written to disk for this.
 */
function received(txn: Transaction): Readable {
  return Readable.from(withCrlf(txn.data_stream()));
}

interface ArcOutcome {
  status: { result: string; comment?: string; shouldSeal?: boolean };
  info?: string;
}

// Imported when first needed, not at the top: mailauth takes 50-70 ms to load, which start-up
// need not wait for. The promise is kept: an import() of a loaded module still costs microseconds.
let mailauth: Promise<typeof import("mailauth")> | undefined;

const ARC_FIELDS = ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"];

/** Verifies the chain of the message in `input`; the verifier's data is kept for sealing. */
async function verifyChain(p: HookContext, input: Readable, seal?: Record<string, unknown>) {
  const { arc, dkimVerify } = await (mailauth ??= import("mailauth"));
  const resolver = nodeStyleResolve(p.dns) as never;
  const data = await dkimVerify(input, { resolver, strict: true, minBitLength: 1024, curTime: new Date(p.server.now()), seal } as never);
  const result = await arc(data.arc as never, { resolver, strict: true, minBitLength: 1024 } as never) as ArcOutcome;
  return { data, result };
}

/** mailauth's answer for a message without ARC fields (strict mode): no chain. */
const NO_CHAIN: ArcOutcome = { status: { result: "none" }, info: "arc=none" };

export const hook_data_post_headers: Hooks["data_post_headers"] = async function (txn) {
  if (this.connection.relay_client() || this.is_immune()) return DECLINED;
  try {
    // Without an ARC field there is no chain: the verifier would read every byte only to say `none`.
    const { result } = await headerMayHave(txn, ARC_FIELDS) ? await verifyChain(this, received(txn)) : { result: NO_CHAIN };
    txn.notes("arc_result", result.status.result);
    this.store_auth_results(result.info ?? `arc=${result.status.result}`);
    this.log(LOGINFO, `${result.status.result}${result.status.comment ? `: ${result.status.comment}` : ""}`);
  } catch (e) {
    this.log(LOGERROR, `verification failed: ${(e as Error).message}`);
  }
  return DECLINED;
};

// ---- sealing --------------------------------------------------------------------------------

/** This message's Authentication-Results (the field with our authserv-id), for the AAR. */
function ownAuthResults(p: HookContext, txn: Transaction): string {
  const id = (p.qp.config("me-auth-results") ?? p.qp.me).toLowerCase();
  const values = txn.header()?.get("Authentication-Results") ?? [];
  const ours = values.find((v) => v.trim().split(/[\s;]/, 1)[0]!.toLowerCase() === id);
  return (ours ?? `${p.qp.me}; none`).trim().replace(/\n/g, "\r\n");
}

async function seal(p: HookContext, txn: Transaction): Promise<void> {
  const key = txn.notes("dkim_signing");
  if (!key) {
    p.log(LOGINFO, "skip, not signed by the dkim plugin: no key to seal with");
    return;
  }
  let privateKey: string;
  try {
    privateKey = fs.readFileSync(key.key_file, "utf8");
  } catch (e) {
    p.log(LOGERROR, `cannot read the key ${key.key_file}: ${(e as NodeJS.ErrnoException).code}`);
    return;
  }
  const signTime = new Date(p.server.now());
  const sealing = { signingDomain: key.domain, selector: key.selector, privateKey };
  const { data, result } = await verifyChain(p, Readable.from(withCrlf(txn.message_stream())), { ...sealing });
  const cv = result.status.result;
  if (cv !== "none" && cv !== "pass" && !result.status.shouldSeal) {
    p.log(LOGINFO, `skip, the chain is ${cv} and cannot be sealed again`);
    return;
  }
  const { createSeal } = await (mailauth ??= import("mailauth"));
  const made = await createSeal(false, {
    headers: data.headers,
    arc: data.arc,
    seal: { ...(data as { seal?: object }).seal, ...sealing, cv, authResults: ownAuthResults(p, txn), signTime },
    strict: true,
  } as never);
  if (made.headers.length === 0) {
    p.log(
      LOGERROR,
      `sealing as ${key.domain} failed: ${made.errors.map((e) => (e.err as Error | undefined)?.message ?? "unknown").join("; ")}`,
    );
    return;
  }
  const header = txn.header();
  // ARC-Seal ends up first, then the ARC-Message-Signature, then the ARC-Authentication-Results.
  for (const line of [...made.headers].reverse()) {
    const m = /^([^:]+):\s*([\s\S]*)$/.exec(line)!;
    header?.add(m[1]!, m[2]!.replace(/\r\n/g, "\n"), 0);
  }
  p.log(LOGINFO, `sealed as d=${key.domain} s=${key.selector}, cv=${cv}`);
}

export const hook_data_post: Hooks["data_post"] = async function (txn) {
  if (!this.connection.relay_client()) return DECLINED;
  try {
    await seal(this, txn);
  } catch (e) {
    this.log(LOGERROR, `sealing failed: ${(e as Error).message}`);
  }
  return DECLINED;
};
