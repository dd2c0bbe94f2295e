/**
 * What DATA and BDAT share once the bytes are decoded: the header block and the spool
 * (`Intake`), the waits with their time limits and rate floor (`DataWait`), and the end of a
 * message: data_post_headers, the Received and Authentication-Results headers, data_post and the
 * queue stage.
 * @module
 */
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, LOGERROR, LOGINFO, OK } from "../api/codes.ts";
import { Header } from "../api/header.ts";
import { VERSION } from "../api/version.ts";
import { HeaderBlock } from "../smtp/header_block.ts";
import type { Outcome } from "./hook_runner.ts";
import { refusalReply, refuse } from "./refusals.ts";
import { REPLIES, type Reply } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";
import { type SmtpTransaction, transactionControl } from "./transaction.ts";

/** How receiving a message ended: "ok", a reason to refuse it, or "gone" (the session ended). */
export type Received = "ok" | "bare" | "nul" | "big" | "header" | "spool" | "gone";

/** Takes decoded message content (LF line ends) into the header block and the spool. */
export class Intake {
  readonly #s: SmtpSession;
  readonly #txn: SmtpTransaction;
  #header: HeaderBlock | undefined = new HeaderBlock();
  #headerTooBig = false;
  #spoolError: Error | undefined;

  constructor(s: SmtpSession, txn: SmtpTransaction) {
    this.#s = s;
    this.#txn = txn;
  }

  /** Whether content is still wanted (nothing is stored after the first problem). */
  get accepting(): boolean {
    return !this.#headerTooBig && !this.#spoolError;
  }

  /**
   * Adds content; false when a data_headers_end plugin ended the session. `owned`: the bytes are
   * the caller's own fresh buffer, kept as they are rather than copied.
   */
  push(content: Uint8Array, owned = false): boolean | Promise<boolean> {
    if (!this.accepting || content.length === 0) return true;
    const header = this.#header;
    if (header) {
      const end = header.push(content);
      if ((end?.header ?? header.length) > this.#s.limits.maxHeaderSize) {
        this.#headerTooBig = true;
        return true;
      }
      if (end) {
        this.#txn.header(Header.parse(header.text(end.header)));
        transactionControl.setBodyStart(this.#txn, end.body);
        this.#header = undefined;
        // A promise only when a data_headers_end plugin answers with one (or ends the session).
        const going = headersEnd(this.#s);
        if (going instanceof Promise) return going.then((on) => on && this.#store(content, owned));
        if (!going) return false;
      }
    }
    return this.#store(content, owned);
  }

  #store(content: Uint8Array, owned: boolean): true {
    try {
      transactionControl.write(this.#txn, content, owned);
    } catch (e) {
      // The caller keeps reading to the real end so no message bytes are taken for commands.
      this.#spoolError = e as Error;
      this.#s.log(LOGERROR, `cannot spool the message: ${this.#spoolError.message}`);
    }
    return true;
  }

  /** The data ended: "ok", or why the message is refused ("gone" when a plugin ended the session). */
  async end(): Promise<Received> {
    if (this.#headerTooBig) return "header";
    if (this.#spoolError) return "spool";
    if (this.#header) {
      // The data ended inside the header block: all of it is header, the body is empty.
      const end = this.#header.finish();
      this.#txn.header(Header.parse(this.#header.text(end.header)));
      transactionControl.setBodyStart(this.#txn, end.body);
      this.#header = undefined;
      const going = headersEnd(this.#s);
      if (!(going instanceof Promise ? await going : going)) return "gone";
    }
    return "ok";
  }
}

/**
 * Waiting for message bytes: each wait ends at the read timeout, and earlier when the average
 * rate since `begin` falls below `data_rate_min` after its grace period.
 */
export class DataWait {
  readonly #s: SmtpSession;
  readonly #started: number;
  #raw = 0;
  #waitedSince: number;

  constructor(s: SmtpSession) {
    this.#s = s;
    this.#started = this.#waitedSince = s.clock.now();
  }

  /** Counts bytes that arrived. */
  got(bytes: number): void {
    this.#s.host.metrics.receivedBytes.inc({}, bytes);
    this.#raw += bytes;
    this.#waitedSince = this.#s.clock.now();
  }

  /** Waits for input; "ok" when there may be more, "gone" when the session ended (answered here). */
  async wait(): Promise<"ok" | "gone"> {
    const s = this.#s;
    const now = s.clock.now();
    const { dataRateMin: rate, dataTimeout } = s.limits;
    const grace = s.readTimeout(s.limits.dataRateGrace);
    const started = this.#started;
    if (rate > 0 && now - started > grace * 1000 && this.#raw / ((now - started) / 1000) < rate) {
      s.log(LOGINFO, `DATA slower than ${rate} bytes/s, closing`);
      await s.abort(REPLIES.dataTooSlow);
      return "gone";
    }
    // Wake up when the rate floor would be broken if nothing more came, not only at the timeout,
    // so a client that falls silent is cut as soon as it is too slow.
    const idleUntil = this.#waitedSince + s.readTimeout(dataTimeout) * 1000;
    const slowAt = rate > 0 ? started + Math.max(grace * 1000, (this.#raw / rate) * 1000) + 1 : Infinity;
    const w = await s.waitInput(Math.min(idleUntil, slowAt));
    if (w === "eof") {
      if (!s.closed) {
        s.send(REPLIES.incompleteData);
        await s.disconnect();
      }
      return "gone";
    }
    if (w === "timeout" && s.clock.now() >= this.#waitedSince + s.readTimeout(dataTimeout) * 1000) {
      await s.timedOut();
      return "gone";
    }
    return "ok";
  }
}

/** Answers a message that was received but is refused for `got`, and drops the transaction. */
export async function refuseReceived(s: SmtpSession, got: Exclude<Received, "ok" | "gone">): Promise<void> {
  await s.resetTransaction();
  const reply = {
    bare: REPLIES.bareNewlineInData,
    nul: REPLIES.nulInData,
    big: REPLIES.messageTooBig,
    header: REPLIES.headerTooBig,
    spool: REPLIES.spoolWriteFailed,
  }[got];
  answered(s, reply.code, "");
  s.send(reply);
}

/** Fires data_headers_end; returns false when a plugin ended the session. */
function headersEnd(s: SmtpSession): boolean | Promise<boolean> {
  const r = s.runHooksNow("data_headers_end");
  return r instanceof Promise ? r.then((o) => headersEndAnswer(s, o)) : headersEndAnswer(s, r);
}

function headersEndAnswer(s: SmtpSession, r: Outcome): true | Promise<false> {
  if (r.code === DENY_DISCONNECT) {
    s.send(REPLIES.headersEndDenied, r.msg);
    return s.disconnect().then(() => false);
  }
  if (r.code === DENYSOFT_DISCONNECT) {
    s.send(REPLIES.headersEndDeferred, r.msg);
    return s.disconnect().then(() => false);
  }
  return true;
}

/** The message is in: the header hooks and headers, data_post, then the queue. */
export async function finishMessage(s: SmtpSession, txn: SmtpTransaction): Promise<void> {
  const header = txn.header() ?? txn.header(new Header())!;
  // Each stage awaited only when its plugins answered with a promise: most have no plugins.
  const headers = s.runHooksNow("data_post_headers");
  if (headers instanceof Promise) await headers;
  const authservId = s.config("me-auth-results") ?? s.me;
  if (authservId !== "none" && header.count("Authentication-Results") > 0) {
    // RFC 8601 §5: a field that claims our authserv-id came from outside: it goes, signed or not.
    removeForged(header, authservId);
    if (!dkimCoversAuthResults(header)) header.rename("Authentication-Results", "Original-Authentication-Results");
  }
  const received = receivedLine(s);
  header.add("Received", received instanceof Promise ? await received : received, 0);
  if (authservId !== "none") header.add("Authentication-Results", authResults(s, txn, authservId), 0);

  const post = await s.runHooks("data_post");
  if (post.code === DONE) {
    await s.resetTransaction();
    return;
  }
  const refusal = refusalReply(post.code, REPLIES.dataPostRefusals);
  if (refusal) answered(s, refusal.code, post.plugin);
  if (await refuse(s, post, REPLIES.dataPostRefusals)) return;
  await queue(s);
}

/** The reply to the queue hooks' answer; undefined for DONE (the plugin answered itself). */
function queueReply(code: number): Reply | undefined {
  switch (code) {
    case OK:
      return REPLIES.queued;
    case DENY:
      return REPLIES.queueDenied;
    case DENYSOFT:
      return REPLIES.queueDeferred;
    case DONE:
      return undefined;
    default:
      return REPLIES.queueDeclined;
  }
}

/** Counts a message answered after its data (metrics; the accepted ones for `qpsmtpd status`). */
function answered(s: SmtpSession, code: number, plugin: string | undefined): void {
  s.host.metrics.message(code, plugin ?? "", s.clock.now());
}

async function queue(s: SmtpSession): Promise<void> {
  const queuePre = s.runHooksNow("queue_pre");
  const pre = queuePre instanceof Promise ? await queuePre : queuePre;
  if (pre.code === DONE) {
    await s.resetTransaction();
    return;
  }
  if (pre.timedOut || (pre.code !== OK && pre.code !== DECLINED && pre.code !== 0)) {
    if (!pre.timedOut) s.log(LOGERROR, `queue_pre returned an illegal value ${pre.code}`);
    answered(s, REPLIES.queueDeclined.code, pre.plugin);
    s.send(REPLIES.queueDeclined, pre.msg);
    await s.resetTransaction();
    return;
  }
  const r = await s.runHooks("queue");
  const reply = r.timedOut ? REPLIES.queueDeclined : queueReply(r.code);
  if (reply) {
    answered(s, reply.code, r.plugin);
    s.send(reply, r.msg);
  } else answered(s, 250, r.plugin); // DONE: the plugin answered itself
  const queuePost = s.runHooksNow("queue_post");
  const post = queuePost instanceof Promise ? await queuePost : queuePost;
  if (post.code !== OK && post.code !== 0 && post.code !== DECLINED) {
    s.log(LOGERROR, `queue_post: ${post.msg.join(" ")}`);
  }
  await s.resetTransaction();
}

/** The Received field's value: a received_line plugin's, or ours (without a promise when no plugin answers with one). */
function receivedLine(s: SmtpSession): string | Promise<string> {
  const c = s.connection;
  // RFC 3848, and RFC 6531 3.7.3 for a message sent with SMTPUTF8.
  let proto = s.transaction.mail_options().smtputf8 ? "UTF8SMTP" : c.hello === "helo" ? "SMTP" : "ESMTP";
  if (c.tls) proto += "S";
  if (s.authenticated()) proto += "A";
  const authHeader = s.authenticated() ? `(smtp-auth username ${s.authUser}, mechanism ${s.authMechanism})` : "";
  const sslHeader = c.tls ? `(${c.tls_cipher} encrypted)` : "";
  const r = s.runHooksNow("received_line", proto, authHeader, sslHeader);
  return r instanceof Promise ? r.then((o) => receivedText(s, o, proto, sslHeader)) : receivedText(s, r, proto, sslHeader);
}

function receivedText(s: SmtpSession, r: Outcome, proto: string, sslHeader: string): string {
  if (r.code === OK && r.msg.length) return r.msg.join("\n");
  const c = s.connection;
  const helo = (c.hello_host ?? "").replace(/[^\x21-\x7e]/g, "?");
  return `from ${c.remote_info} (HELO ${helo}) (${c.remote_ip})\n by ${s.me} (qpsmtpd/${VERSION}) with ${proto}${
    sslHeader ? ` ${sslHeader}` : ""
  }; ${receivedDate(s.clock.now())}`;
}

/** The Received date for `now`, formatted once a second rather than once a message. */
let dated = { second: NaN, text: "" };
function receivedDate(now: number): string {
  const second = Math.floor(now / 1000);
  if (dated.second !== second) dated = { second, text: rfc2822Date(new Date(second * 1000)) };
  return dated.text;
}

function authResults(s: SmtpSession, txn: SmtpTransaction, authservId: string): string {
  const parts = [authservId];
  parts.push(s.authenticated() ? `auth=pass (${s.authMechanism?.toLowerCase()}) smtp.auth=${s.authUser}` : "auth=none");
  for (const more of [s.connection.notes("authentication_results"), txn.notes("authentication_results")]) {
    if (more) parts.push(more);
  }
  return parts.join("; ");
}

/** Deletes the Authentication-Results fields whose authserv-id is `ours`. */
function removeForged(h: Header, ours: string): void {
  const values = h.get("Authentication-Results");
  for (let i = values.length - 1; i >= 0; i--) {
    // The authserv-id is the value's first token, after any comment (RFC 8601 §2.2).
    const id = values[i]!.replace(/^\s*(?:\([^)]*\)\s*)*/, "").split(/[\s;]/, 1)[0] ?? "";
    if (id.toLowerCase() === ours.toLowerCase()) h.delete("Authentication-Results", i);
  }
}

function dkimCoversAuthResults(h: Header): boolean {
  return h.get("DKIM-Signature").some((sig) => {
    const m = /(?:^|;)\s*h\s*=\s*([^;]*)/i.exec(sig);
    return m !== null && /(^|:)\s*authentication-results\s*(:|$)/i.test(m[1]!.replace(/\s+/g, ""));
  });
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `Tue, 24 Nov 2026 15:41:08 +0000` in local time. */
export function rfc2822Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const a = Math.abs(off);
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${
    p(d.getSeconds())
  } ${sign}${p(Math.floor(a / 60))}${p(a % 60)}`;
}
