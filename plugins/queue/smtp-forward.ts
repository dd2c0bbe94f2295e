/**
 * queue/smtp-forward: relays each message to another SMTP server (a smarthost or the local MTA)
 * and passes on what the client declared: STARTTLS to the next hop, REQUIRETLS, SMTPUTF8, DSN
 * parameters, BDAT (CHUNKING, BINARYMIME) and 8BITMIME, each when the next hop offers it.
 *
 * Hooks: queue; `check` for `qpsmtpd check` (the next hop greets and answers EHLO, and offers
 * STARTTLS when `tls` requires it). Config files: none (`tls_ca` may name one in the config dir).
 * Arguments: `HOST [PORT]` as in qpsmtpd (port 25), then key/value options (qpsmtpd's later
 * `xclient` flag after the port is accepted with a warning and ignored: the next hop sees this
 * server as the client):
 * - `tls opportunistic|required|verify|no` (opportunistic): STARTTLS when the next hop offers it.
 *   `opportunistic` takes any certificate, and goes on in clear when STARTTLS is not offered or
 *   refused, or sends again in clear over a new connection when the handshake fails (as
 *   Postfix's `may`). `required`: no STARTTLS offered, STARTTLS refused or a failed handshake
 *   → 451, the message stays with the sender. `verify`: as `required`, and the certificate must
 *   chain to the system's CAs (or `tls_ca`) and name the next hop (`tls_name`), else 451.
 *   `no`: never STARTTLS. SNI is `tls_name` unless it is an IP address. After the handshake the
 *   next hop is greeted again and only its new capabilities count (RFC 3207).
 * - `tls_ca FILE`: PEM CA certificates to verify the next hop against instead of the system's
 *   (absolute, or relative to the config directory).
 * - `tls_name NAME` (HOST): the name SNI sends and the certificate must match.
 * - `smtp_timeout SECONDS` (60, Net::SMTP's): the time limit for connecting and for each reply.
 *   The whole call is also bounded by the plugin's time limit (`plugin_timeout`, 30 s by default,
 *   or `timeout N` on this line): raise it for big messages over slow links.
 * - `chunking 1|0` (1): send with BDAT when the next hop offers CHUNKING; `chunk_size BYTES`
 *   (65536) per chunk.
 *
 * What goes to the next hop:
 * - The content, canonical: CRLF line ends, stray CRs replaced; with DATA, dots stuffed; with BDAT
 *   (when CHUNKING is offered) chunks of exact byte counts, the last `BDAT n LAST`, pipelined
 *   when PIPELINING is offered. `BODY=8BITMIME` when offered (8-bit content goes to a next hop
 *   without 8BITMIME as it is, as before). A `BODY=BINARYMIME` message goes only by BDAT to a
 *   next hop that offers BINARYMIME, byte for byte after its header; else it is refused (5.6.3;
 *   nothing converts it).
 * - REQUIRETLS (RFC 8689): a message received with it leaves only over TLS with a verified
 *   certificate (as `tls verify`, whatever `tls` says) to a next hop that offers REQUIRETLS after
 *   STARTTLS, with `REQUIRETLS` on its MAIL; no STARTTLS (or a 5xx to it), a certificate that
 *   does not verify, or no REQUIRETLS offered → refused for good (`5.7.30 REQUIRETLS support
 *   required`); a 4xx to STARTTLS, a failed handshake or a network failure → 451. A `TLS-Required: No` header does not
 *   lower this: RFC 8689 has the header field ignored on a message that carries the REQUIRETLS
 *   parameter. Without REQUIRETLS the header asks for no more than opportunistic TLS, and the
 *   `tls` option (the operator's policy for this hop) stands.
 * - SMTPUTF8 (RFC 6531): a message received with SMTPUTF8 goes with `SMTPUTF8` when the next hop
 *   offers it. When it does not, the message is refused for good (5.6.7, never downgraded) if it
 *   needs SMTPUTF8: a UTF-8 address in the envelope, or non-ASCII in its header (RFC 6532); a
 *   message that declared SMTPUTF8 but is all ASCII there goes without it. Addresses go as UTF-8.
 * - DSN (RFC 3461): when the next hop offers DSN, `RET=` and `ENVID=` on MAIL and `NOTIFY=` and
 *   `ORCPT=` on each RCPT, as the client gave them (xtext encoded); otherwise none.
 *
 * Per-recipient results: each recipient's outcome is logged on its own line and stored in the
 * transaction note `smtp_forward` (one entry per recipient, envelope order) and in the
 * recipient's own note `smtp_forward`: `delivered` (the next hop took the message for it),
 * `refused` (a 5xx for it or for the message) or `deferred` (a 4xx, or the delivery failed).
 *
 * Replies and failure policy:
 * - every recipient taken → `250 Queued: <the next hop's reply>`;
 * - the sender, the message or every recipient refused with a 5xx → `552` with the next hop's
 *   text (its enhanced code first), so the sender bounces at once (qpsmtpd issue #150);
 *   REQUIRETLS, SMTPUTF8 or BINARYMIME that cannot be honoured → `552 5.7.30`, `5.6.7`, `5.6.3`;
 * - a 4xx with nothing delivered, the next hop down, refusing connections, silent past
 *   `smtp_timeout`, or TLS that `tls required`/`verify` cannot get → DECLINED (`451`, or the next
 *   queue plugin: a second smtp-forward can be the backup), with a log line;
 * - some recipients taken, others refused (4xx or 5xx at RCPT): the message is delivered to the
 *   ones taken, then the sender gets a delivery status notification (RFC 3464
 *   multipart/report, RFC 6533 global types when the message needed SMTPUTF8) from
 *   `MAILER-DAEMON@<me>` with a null envelope sender, through the same next hop on the same
 *   connection, for the refused recipients whose NOTIFY asks for failures (all of them without
 *   NOTIFY; none with NOTIFY=NEVER), returning the full message with RET=FULL and only its
 *   header otherwise (and always only the header of a BINARYMIME message). A 4xx refusal is
 *   reported as failed, saying it was temporary and not retried: this plugin keeps no queue to
 *   retry from, and holding the whole message back for one mailbox would hold it back from all.
 *   Then `250 Queued: delivered to N of M recipients`. When the sender is `<>`, nobody asked for
 *   a report, or it cannot be sent, that is logged and the reply is still 250: the message must
 *   not reach the recipients that got it a second time;
 * - a next hop without DSN: recipients taken whose NOTIFY asks for SUCCESS get a `relayed`
 *   report (RFC 3461 4.1) in the same notification.
 * If the plugin's time limit ends the call after the next hop took the message, the sender sees
 * 451 and may send it again: give `timeout` room.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isAbsolute, join } from "node:path";
import {
  type Address,
  type Check,
  type ClientReply,
  DECLINED,
  DENY,
  type HookContext,
  type Hooks,
  type Init,
  isUtf8,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  type MailOptions,
  OK,
  type Result,
  SmtpClient,
  type Transaction,
  xtextEncode,
} from "qpsmtpd";

/** One recipient's outcome at the next hop. */
export interface SmtpForwardOutcome {
  /** The recipient, `<user@host>`. */
  readonly recipient: string;
  readonly status: "delivered" | "refused" | "deferred";
  /** The next hop's reply (`250 2.0.0 Ok: queued as …`, `550 5.1.1 …`), or why nothing was sent. */
  readonly reply: string;
}

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** queue/smtp-forward: each recipient's outcome, in envelope order. */
    smtp_forward: SmtpForwardOutcome[];
  }
  interface AddressNotes {
    /** queue/smtp-forward: this recipient's outcome. */
    smtp_forward: SmtpForwardOutcome;
  }
}

type TlsMode = "opportunistic" | "required" | "verify" | "no";

interface Data {
  host: string;
  port: number;
  tls: TlsMode;
  /** The name for SNI and the certificate check. */
  tlsName: string;
  ca: Buffer | undefined;
  timeoutMs: number;
  chunking: boolean;
  chunkSize: number;
}

const KEYS = new Set(["tls", "tls_ca", "tls_name", "smtp_timeout", "chunking", "chunk_size", "timeout", "loglevel"]);
const TLS_MODES = new Set<string>(["opportunistic", "required", "verify", "no"]);
/** Longest piece of a next hop's reply we repeat in ours. */
const MAX_ECHO = 300;

export const register: Init<Data> = function (server, ...args) {
  const [host, ...rest] = args;
  if (!host) throw new Error("queue/smtp-forward needs the next hop's host as its first argument");
  if (!(/^[\w.-]+$/.test(host) || isIP(host) !== 0) || KEYS.has(host)) throw new Error(`queue/smtp-forward: bad host "${host}"`);
  let port = "25";
  if (rest[0] !== undefined && /^\d+$/.test(rest[0])) port = rest.shift()!;
  if (rest[0] === "xclient") {
    rest.shift();
    this.log(LOGWARN, "the xclient flag is not supported: the next hop sees this server as the client");
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new Error(`queue/smtp-forward: bad port "${port}"`);
  if (rest.length % 2 !== 0) throw new Error(`queue/smtp-forward: options are key/value pairs (${[...KEYS].join(", ")})`);
  const o: Record<string, string> = Object.create(null);
  for (let i = 0; i < rest.length; i += 2) {
    if (!KEYS.has(rest[i]!)) throw new Error(`queue/smtp-forward: unknown option "${rest[i]}"`);
    o[rest[i]!] = rest[i + 1]!;
  }
  const tlsName = o["tls_name"] ?? host;
  if (!/^[\w.-]+$/.test(tlsName) && isIP(tlsName) === 0) throw new Error(`queue/smtp-forward: bad tls_name "${tlsName}"`);
  const tls = o["tls"] ?? "opportunistic";
  if (!TLS_MODES.has(tls)) throw new Error(`queue/smtp-forward: tls is one of ${[...TLS_MODES].join(", ")}, not "${tls}"`);
  const seconds = o["smtp_timeout"] ?? "60";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`queue/smtp-forward: bad smtp_timeout "${seconds}"`);
  const chunking = o["chunking"] ?? "1";
  if (chunking !== "0" && chunking !== "1") throw new Error(`queue/smtp-forward: chunking is 0 or 1, not "${chunking}"`);
  const chunkSize = o["chunk_size"] ?? "65536";
  if (!/^\d{1,9}$/.test(chunkSize) || Number(chunkSize) < 1) throw new Error(`queue/smtp-forward: bad chunk_size "${chunkSize}"`);
  let ca: Buffer | undefined;
  if (o["tls_ca"] !== undefined) {
    const f = o["tls_ca"];
    const path = isAbsolute(f) ? f : server.config_path(f) ?? join(server.config_dir, f);
    try {
      ca = readFileSync(path);
    } catch (e) {
      throw new Error(`queue/smtp-forward: cannot read tls_ca ${path}: ${(e as Error).message}`);
    }
  }
  this.data.host = host;
  this.data.port = Number(port);
  this.data.tls = tls as TlsMode;
  this.data.tlsName = tlsName;
  this.data.ca = ca;
  this.data.timeoutMs = Number(seconds) * 1000;
  this.data.chunking = chunking === "1";
  this.data.chunkSize = Number(chunkSize);
};

/** What one attempt came to. */
type Verdict =
  | { readonly kind: "ok"; readonly text: string }
  | { readonly kind: "perm"; readonly text: string }
  | { readonly kind: "temp"; readonly why: string }
  /** Opportunistic TLS failed in the handshake: try again in clear. */
  | { readonly kind: "clear"; readonly why: string };

/** What the message asks of the next hop, worked out once. */
interface Needs {
  readonly options: MailOptions;
  readonly requireTls: boolean;
  /** The message cannot travel without SMTPUTF8. */
  readonly utf8: boolean;
  readonly binary: boolean;
}

/** A reply as one line, control characters replaced (it goes into logs, notes and reports). */
const text = (r: ClientReply): string => safe(`${r.code} ${r.lines.join(" ")}`, true);
/** A next hop's text for our reply or log: bounded, control characters replaced. */
const clip = (s: string): string => safe(s.length > MAX_ECHO ? `${s.slice(0, MAX_ECHO)}...` : s, true);
const STATUS = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;
/** The reply's enhanced status code, or the plain one of its class. */
const statusOf = (r: ClientReply): string => STATUS.exec(r.lines[0] ?? "")?.[0].trim() ?? `${Math.floor(r.code / 100)}.0.0`;
const delivered = (r: ClientReply): boolean => r.code >= 200 && r.code < 300;

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const rcpts = txn.recipients();
  if (rcpts.length === 0) return temp(this, txn, "the transaction has no recipient");
  const options = txn.mail_options();
  const needs: Needs = {
    options,
    requireTls: options.requiretls,
    utf8: options.smtputf8 && needsUtf8(txn),
    binary: options.body === "BINARYMIME",
  };
  let verdict = await attempt(this, txn, needs, true);
  if (verdict.kind === "clear") {
    this.log(LOGWARN, `${verdict.why}; sending in clear (tls opportunistic)`);
    verdict = await attempt(this, txn, needs, false);
  }
  switch (verdict.kind) {
    case "ok":
      return [OK, verdict.text];
    case "perm":
      this.log(LOGWARN, `refused: ${verdict.text}`);
      return [DENY, verdict.text];
    default:
      return temp(this, txn, verdict.why);
  }
};

/** Whether the message needs SMTPUTF8: a UTF-8 address in the envelope, or UTF-8 in its header. */
function needsUtf8(txn: Transaction): boolean {
  if (txn.sender()?.isUtf8() || txn.recipients().some((r) => r.isUtf8())) return true;
  return isUtf8(txn.header()?.as_string() ?? "");
}

/** One connection to the next hop; `tlsAllowed` false for the retry in clear. */
async function attempt(p: HookContext<Data>, txn: Transaction, needs: Needs, tlsAllowed: boolean): Promise<Verdict> {
  const { host, port, timeoutMs } = p.data;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect({ host, port }, { timeoutMs, signal: p.signal });
    const greeting = await client.read();
    if (greeting.code !== 220) return { kind: "temp", why: `greeting ${text(greeting)}` };
    let caps = await client.hello(p.qp.me);
    const secured = await secure(p, client, caps, needs, tlsAllowed);
    if (secured !== undefined) {
      if ("kind" in secured) return secured;
      caps = secured.caps;
    }
    const refusal = unmet(p, client, caps, needs);
    if (refusal) return refusal;
    return await transfer(p, txn, client, caps, needs);
  } catch (e) {
    return { kind: "temp", why: (e as Error).message };
  } finally {
    client?.close();
  }
}

/**
 * STARTTLS as the `tls` option and REQUIRETLS ask. Returns the capabilities after the
 * handshake, a verdict that ends the attempt, or undefined to go on in clear.
 */
async function secure(
  p: HookContext<Data>,
  client: SmtpClient,
  caps: Set<string>,
  needs: Needs,
  tlsAllowed: boolean,
): Promise<{ caps: Set<string> } | Verdict | undefined> {
  const { host, tlsName, ca } = p.data;
  // REQUIRETLS is the sender's demand: it needs a verified certificate whatever `tls` says.
  const mode: TlsMode = needs.requireTls ? "verify" : p.data.tls;
  if (mode === "no" || !tlsAllowed) return undefined;
  if (!caps.has("STARTTLS")) {
    if (needs.requireTls) return requireTlsFailed(host, "it does not offer STARTTLS");
    if (mode !== "opportunistic") return { kind: "temp", why: `${host} does not offer STARTTLS (tls ${mode})` };
    p.log(LOGINFO, `${host} does not offer STARTTLS; sending in clear`);
    return undefined;
  }
  await client.write("STARTTLS\r\n");
  const go = await client.read();
  if (go.code !== 220) {
    if (needs.requireTls && go.code >= 500) return requireTlsFailed(host, `it refused STARTTLS: ${clip(text(go))}`);
    if (mode !== "opportunistic") return { kind: "temp", why: `STARTTLS refused: ${text(go)} (tls ${mode})` };
    p.log(LOGWARN, `STARTTLS refused: ${text(go)}; sending in clear`);
    return undefined;
  }
  let info;
  try {
    info = await client.startTls({ servername: tlsName, ...(ca ? { ca } : {}) });
  } catch (e) {
    const why = `TLS with ${host}: ${(e as Error).message}`;
    return mode === "opportunistic" ? { kind: "clear", why } : { kind: "temp", why };
  }
  const cert = info.verified ? "certificate verified" : `certificate not verified (${info.verifyError})`;
  if (!info.verified && mode === "verify") {
    if (needs.requireTls) return requireTlsFailed(host, `its ${cert} for ${tlsName}`);
    return { kind: "temp", why: `TLS with ${host}: ${cert} for ${tlsName} (tls verify)` };
  }
  p.log(LOGINFO, `TLS with ${host}: ${info.protocol} ${info.cipher}, ${cert}`);
  return { caps: await client.hello(p.qp.me) };
}

function requireTlsFailed(host: string, why: string): Verdict {
  return { kind: "perm", text: `5.7.30 REQUIRETLS support required: ${host} cannot take this message, ${why}` };
}

/** A demand of the message the next hop cannot meet (refused for good), else undefined. */
function unmet(p: HookContext<Data>, client: SmtpClient, caps: Set<string>, needs: Needs): Verdict | undefined {
  const { host } = p.data;
  if (needs.requireTls) {
    if (!client.tls?.verified) return requireTlsFailed(host, "TLS is not verified");
    if (!caps.has("REQUIRETLS")) return requireTlsFailed(host, "it does not offer REQUIRETLS");
  }
  if (needs.utf8 && !caps.has("SMTPUTF8")) {
    return { kind: "perm", text: `5.6.7 ${host} does not offer SMTPUTF8, which this message needs (it is not downgraded)` };
  }
  if (needs.binary && !(p.data.chunking && caps.has("CHUNKING") && caps.has("BINARYMIME"))) {
    return { kind: "perm", text: `5.6.3 ${host} does not take BINARYMIME by BDAT, and the binary message is not converted` };
  }
  return undefined;
}

/** MAIL's parameters for the next hop. */
function mailParams(caps: Set<string>, needs: Needs, report = false): string {
  const o = needs.options;
  const params: string[] = [];
  if (needs.binary && !report) params.push("BODY=BINARYMIME");
  else if (caps.has("8BITMIME")) params.push("BODY=8BITMIME");
  if (o.smtputf8 && caps.has("SMTPUTF8")) params.push("SMTPUTF8");
  if (needs.requireTls) params.push("REQUIRETLS");
  if (caps.has("DSN") && !report) {
    if (o.ret) params.push(`RET=${o.ret}`);
    if (o.envid !== undefined) params.push(`ENVID=${xtextEncode(o.envid)}`);
  }
  return params.map((x) => ` ${x}`).join("");
}

function rcptParams(caps: Set<string>, rcpt: Address): string {
  if (!caps.has("DSN") || !rcpt.dsn) return "";
  const { notify, orcpt } = rcpt.dsn;
  let s = "";
  if (notify) s += ` NOTIFY=${notify.join(",")}`;
  if (orcpt) s += ` ORCPT=${orcpt.type};${xtextEncode(orcpt.address)}`;
  return s;
}

/** Sends the content by BDAT or DATA; the next hop's final reply. */
async function sendContent(
  p: HookContext<Data>,
  client: SmtpClient,
  caps: Set<string>,
  content: AsyncIterable<Uint8Array>,
  binary: boolean,
): Promise<ClientReply> {
  if (p.data.chunking && caps.has("CHUNKING")) {
    return client.sendBdat(content, { chunkSize: p.data.chunkSize, pipelining: caps.has("PIPELINING"), binaryBody: binary });
  }
  await client.write("DATA\r\n");
  const go = await client.read();
  if (go.code !== 354) return go;
  await client.sendData(content);
  return client.read();
}

/** The transaction proper, then the report for the recipients refused when others took it. */
async function transfer(p: HookContext<Data>, txn: Transaction, client: SmtpClient, caps: Set<string>, needs: Needs): Promise<Verdict> {
  const { host } = p.data;
  const rcpts = txn.recipients();
  const replies = await client.sendEnvelope(
    [
      `MAIL FROM:${txn.sender()?.format() ?? "<>"}${mailParams(caps, needs)}\r\n`,
      ...rcpts.map((r) => `RCPT TO:${r.format()}${rcptParams(caps, r)}\r\n`),
    ],
    caps.has("PIPELINING"),
  );
  const mail = replies[0]!;
  if (mail.code !== 250) {
    if (mail.code >= 500) {
      record(p, txn, rcpts.map(() => ({ status: "refused", reply: text(mail) })));
      return { kind: "perm", text: `${statusOf(mail)} sender refused by ${host}: ${clip(text(mail))}` };
    }
    return { kind: "temp", why: `MAIL ${text(mail)}` };
  }
  const rcptReplies = rcpts.map((_, i) => replies[i + 1]!);
  const taken = rcpts.filter((_, i) => rcptReplies[i]!.code === 250 || rcptReplies[i]!.code === 251);
  if (taken.length === 0) {
    const outcomes = rcptReplies.map((r) => ({ status: r.code >= 500 ? "refused" : "deferred", reply: text(r) }) as const);
    record(p, txn, outcomes);
    if (rcptReplies.every((r) => r.code >= 500)) {
      const first = rcptReplies[0]!;
      return { kind: "perm", text: `${statusOf(first)} every recipient refused by ${host}: ${clip(text(first))}` };
    }
    await client.write("QUIT\r\n").catch(() => undefined);
    return { kind: "temp", why: "no recipient accepted, some only for now" };
  }
  const final = await sendContent(p, client, caps, txn.message_stream(), needs.binary);
  if (!delivered(final)) {
    const refused = final.code >= 500;
    // Those taken at RCPT share the message's fate; the others keep their own refusal.
    const said = (r: ClientReply): ClientReply => (r.code === 250 || r.code === 251 ? final : r);
    record(p, txn, rcptReplies.map((r) => ({ status: said(r).code >= 500 ? "refused" : "deferred", reply: text(said(r)) })));
    if (refused) return { kind: "perm", text: `${statusOf(final)} message refused by ${host}: ${clip(text(final))}` };
    return { kind: "temp", why: `the message: ${text(final)}` };
  }
  const outcomes = rcptReplies.map((r) =>
    r.code === 250 || r.code === 251
      ? ({ status: "delivered", reply: text(final) } as const)
      : ({ status: r.code >= 500 ? "refused" : "deferred", reply: text(r) } as const)
  );
  record(p, txn, outcomes);
  const failed = rcpts.filter((_, i) => outcomes[i]!.status !== "delivered");
  const relayedUnreported = caps.has("DSN") ? [] : taken.filter((r) => r.dsn?.notify?.includes("SUCCESS"));
  if (failed.length > 0 || relayedUnreported.length > 0) {
    await report(p, txn, client, caps, needs, rcpts, outcomes, rcptReplies, final);
  }
  await client.write("QUIT\r\n").catch(() => undefined);
  if (failed.length === 0) {
    p.log(LOGINFO, `queued at ${host}:${p.data.port}: ${text(final)}`);
    return { kind: "ok", text: `Queued: ${clip(final.lines.join(" "))}` };
  }
  p.log(LOGWARN, `delivered to ${taken.length} of ${rcpts.length} recipients at ${host}`);
  return { kind: "ok", text: `Queued: delivered to ${taken.length} of ${rcpts.length} recipients (${clip(final.lines.join(" "))})` };
}

/** Keeps each recipient's outcome in the notes and logs it on its own line. */
function record(
  p: HookContext<Data>,
  txn: Transaction,
  outcomes: ReadonlyArray<{ readonly status: SmtpForwardOutcome["status"]; readonly reply: string }>,
): void {
  const rcpts = txn.recipients();
  const all = rcpts.map((r, i) => {
    const o: SmtpForwardOutcome = { recipient: r.format(), ...outcomes[i]! };
    r.notes("smtp_forward", o);
    p.log(o.status === "delivered" ? LOGINFO : LOGWARN, `${o.recipient} ${o.status} at ${p.data.host}: ${clip(o.reply)}`);
    return o;
  });
  txn.notes("smtp_forward", all);
}

function temp(p: HookContext<Data>, txn: Transaction, why: string): Result {
  if (txn.notes("smtp_forward") === undefined && txn.recipients().length > 0) {
    const all = txn.recipients().map((r) => {
      const o: SmtpForwardOutcome = { recipient: r.format(), status: "deferred", reply: why };
      r.notes("smtp_forward", o);
      return o;
    });
    txn.notes("smtp_forward", all);
  }
  p.log(LOGERROR, `forwarding to ${p.data.host}:${p.data.port} failed, the message stays with the sender: ${why}`);
  return DECLINED;
}

// ---- The delivery status notification (RFC 3464, RFC 6533) ----

interface ReportEntry {
  readonly rcpt: Address;
  readonly action: "failed" | "relayed";
  readonly reply: ClientReply;
}

/** Sends the report on the same connection; never throws, logs what became of it. */
async function report(
  p: HookContext<Data>,
  txn: Transaction,
  client: SmtpClient,
  caps: Set<string>,
  needs: Needs,
  rcpts: readonly Address[],
  outcomes: ReadonlyArray<{ readonly status: SmtpForwardOutcome["status"] }>,
  rcptReplies: readonly ClientReply[],
  final: ClientReply,
): Promise<void> {
  const entries: ReportEntry[] = [];
  rcpts.forEach((rcpt, i) => {
    const notify = rcpt.dsn?.notify;
    if (outcomes[i]!.status !== "delivered") {
      if (notify === undefined || notify.includes("FAILURE")) entries.push({ rcpt, action: "failed", reply: rcptReplies[i]! });
      else p.log(LOGINFO, `${rcpt.format()}: no delivery status notification (NOTIFY=${notify.join(",")})`);
    } else if (notify?.includes("SUCCESS") && !caps.has("DSN")) entries.push({ rcpt, action: "relayed", reply: final });
  });
  const sender = txn.sender();
  if (entries.length === 0) return;
  if (!sender || sender.isNull()) {
    p.log(LOGWARN, `no delivery status notification for ${entries.map((e) => e.rcpt.format()).join(", ")}: the sender is <>`);
    return;
  }
  const what = `delivery status notification to ${sender.format()} for ${entries.map((e) => e.rcpt.format()).join(", ")}`;
  try {
    const global = needs.utf8;
    const replies = await client.sendEnvelope(
      [`MAIL FROM:<>${mailParams(caps, { ...needs, binary: false }, true)}\r\n`, `RCPT TO:${sender.format()}\r\n`],
      caps.has("PIPELINING"),
    );
    const refused = replies.find((r) => r.code !== 250);
    if (refused) {
      p.log(LOGERROR, `${what} not sent: ${p.data.host} answered ${text(refused)}`);
      await client.write("RSET\r\n").catch(() => undefined);
      return;
    }
    const r = await sendContent(p, client, caps, dsnMessage(p, txn, needs, entries, global), false);
    if (delivered(r)) p.log(LOGINFO, `${what} sent: ${text(r)}`);
    else p.log(LOGERROR, `${what} not sent: ${p.data.host} answered ${text(r)}`);
  } catch (e) {
    p.log(LOGERROR, `${what} not sent: ${(e as Error).message}`);
  }
}

/** RFC 5322 date. */
function mailDate(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, "+0000");
}

/** Text from elsewhere (addresses, replies) made safe for a header or report line. */
function safe(s: string, utf8: boolean): string {
  // deno-lint-ignore no-control-regex
  return utf8 ? s.replace(/[\x00-\x1f\x7f]/g, "?") : s.replace(/[^\x20-\x7e]/g, "?");
}

/** The report, LF line ends (made canonical on the way out). */
async function* dsnMessage(
  p: HookContext<Data>,
  txn: Transaction,
  needs: Needs,
  entries: readonly ReportEntry[],
  global: boolean,
): AsyncGenerator<Uint8Array> {
  const me = p.qp.me;
  const host = p.data.host;
  const boundary = `=_qpsmtpd_${randomBytes(12).toString("hex")}`;
  const s = (x: string): string => safe(x, global);
  const failed = entries.filter((e) => e.action === "failed");
  const full = needs.options.ret === "FULL" && !needs.binary;
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${me}>`,
    `To: ${s(txn.sender()!.format())}`,
    `Subject: ${failed.length > 0 ? "Undelivered Mail Returned to Sender" : "Successful Mail Relay Notification"}`,
    `Date: ${mailDate(p.server.now())}`,
    `Message-ID: <${randomUUID()}@${me}>`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=${global ? "global-delivery-status" : "delivery-status"};`,
    `\tboundary="${boundary}"`,
    "Content-Transfer-Encoding: 8bit",
    "",
    "This is a MIME-encapsulated message.",
    "",
    `--${boundary}`,
    "Content-Description: Notification",
    `Content-Type: text/plain; charset=${global ? "utf-8" : "us-ascii"}`,
    "",
    `This is the mail system at host ${me}.`,
    "",
  ];
  if (failed.length > 0) {
    head.push(
      `Your message was passed on to ${host} for ${txn.recipients().length - failed.length} recipient(s), but it could not be`,
      "delivered to the recipient(s) below.",
      "",
    );
  }
  for (const e of entries) {
    const who = s(e.rcpt.format());
    const said = s(text(e.reply));
    if (e.action === "relayed") {
      head.push(`${who}: relayed to ${host}, which does not send delivery status notifications:`, `    ${said}`, "");
    } else if (e.reply.code >= 500) {
      head.push(`${who}: refused by ${host}:`, `    ${said}`, "");
    } else {
      head.push(
        `${who}: refused for now by ${host}:`,
        `    ${said}`,
        "    This server keeps no queue, so the delivery was not retried: send the message to",
        "    this recipient again later.",
        "",
      );
    }
  }
  head.push(
    `--${boundary}`,
    "Content-Description: Delivery report",
    `Content-Type: message/${global ? "global-delivery-status" : "delivery-status"}`,
    "",
    `Reporting-MTA: dns; ${me}`,
  );
  if (needs.options.envid !== undefined) head.push(`Original-Envelope-Id: ${s(needs.options.envid)}`);
  head.push(`Arrival-Date: ${mailDate(txn.started)}`, "");
  for (const e of entries) {
    const utf8 = global && e.rcpt.isUtf8();
    head.push(`Final-Recipient: ${utf8 ? "utf-8" : "rfc822"}; ${s(e.rcpt.address())}`);
    const orcpt = e.rcpt.dsn?.orcpt;
    if (orcpt) head.push(`Original-Recipient: ${s(orcpt.type)}; ${s(orcpt.address)}`);
    head.push(
      `Action: ${e.action}`,
      `Status: ${statusOf(e.reply)}`,
      `Remote-MTA: dns; ${host}`,
      `Diagnostic-Code: smtp; ${s(text(e.reply))}`,
      "",
    );
  }
  const part = full ? (global ? "message/global" : "message/rfc822") : (global ? "message/global-headers" : "text/rfc822-headers");
  head.push(
    `--${boundary}`,
    `Content-Description: Undelivered message${full ? "" : " (header)"}`,
    `Content-Type: ${part}`,
    "Content-Transfer-Encoding: 8bit",
    "",
    "",
  );
  yield Buffer.from(head.join("\n"), "utf8");
  if (full) {
    let endsInLf = true;
    for await (const c of txn.message_stream()) {
      if (c.length > 0) endsInLf = c[c.length - 1] === 10;
      yield c;
    }
    if (!endsInLf) yield Buffer.from("\n");
  } else {
    yield Buffer.from(txn.header()?.as_string() ?? "", "utf8");
  }
  yield Buffer.from(`\n--${boundary}--\n`);
}

/** `qpsmtpd check`: the next hop greets, answers EHLO, and offers STARTTLS when `tls` needs it. */
export const check: Check<Data> = async function () {
  const { host, port, timeoutMs, tls } = this.data;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect({ host, port }, { timeoutMs: Math.min(timeoutMs, 10_000), signal: this.signal });
    const greeting = await client.read();
    if (greeting.code !== 220) return [`the next hop ${host}:${port} greets with ${text(greeting)}`];
    const caps = await client.hello(this.server.me);
    await client.write("QUIT\r\n");
    if ((tls === "required" || tls === "verify") && !caps.has("STARTTLS")) {
      return [`the next hop ${host}:${port} does not offer STARTTLS (tls ${tls})`];
    }
    return [];
  } catch (e) {
    return [`the next hop ${host}:${port} does not answer: ${(e as Error).message}`];
  } finally {
    client?.close();
  }
};
