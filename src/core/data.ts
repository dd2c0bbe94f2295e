/**
 * DATA: the data hook, receiving the message into the spool through the strict decoder, the
 * header hooks, the Received and Authentication-Results headers, data_post and the queue stage.
 * @module
 */
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, LOGERROR, LOGINFO, OK } from "../api/codes.ts";
import { Header } from "../api/header.ts";
import { VERSION } from "../api/version.ts";
import { DataDecoder } from "../smtp/data_decoder.ts";
import { HeaderBlock } from "../smtp/header_block.ts";
import { refuse } from "./refusals.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";
import { type SmtpTransaction, transactionControl } from "./transaction.ts";

export async function cmdData(s: SmtpSession): Promise<void> {
  const r = await s.runHooks("data");
  if (await refuse(s, r, REPLIES.dataRefusals)) return;
  const txn = s.hasTransaction() ? s.transaction : undefined;
  if (!txn?.sender()) {
    s.send(REPLIES.senderFirst);
    return;
  }
  if (txn.recipients().length === 0) {
    s.send(REPLIES.recipientFirst);
    return;
  }
  // RFC 2920: DATA ends a pipelined group; bytes sent before our 354 are a protocol violation
  // and, on a hostile client, the start of a smuggling attempt.
  if (s.input.size > 0) {
    s.send(REPLIES.pipeliningViolation);
    await s.disconnect();
    return;
  }
  s.send(REPLIES.goAhead);
  const got = await receive(s, txn);
  if (got === "gone") return;
  if (got !== "ok") {
    await s.resetTransaction();
    if (got === "bare") s.send(REPLIES.bareNewlineInData);
    else if (got === "nul") s.send(REPLIES.nulInData);
    else if (got === "big") s.send(REPLIES.messageTooBig);
    else if (got === "header") s.send(REPLIES.headerTooBig);
    else if (got === "spool") s.send(REPLIES.spoolWriteFailed);
    return;
  }
  await finishMessage(s, txn);
}

type Received = "ok" | "bare" | "nul" | "big" | "header" | "spool" | "gone";

/** Reads the message up to the real end of data. The client is always read to the end. */
async function receive(s: SmtpSession, txn: SmtpTransaction): Promise<Received> {
  const dec = new DataDecoder(s.limits.databytes > 0 ? s.limits.databytes : Infinity);
  const started = s.clock.now();
  let raw = 0;
  let header: HeaderBlock | undefined = new HeaderBlock();
  let headerTooBig = false;
  let spoolError: Error | undefined;
  let waitedSince = started;
  for (;;) {
    if (s.input.size === 0) {
      const now = s.clock.now();
      const { dataRateMin: rate, dataTimeout } = s.limits;
      const grace = s.readTimeout(s.limits.dataRateGrace);
      if (rate > 0 && now - started > grace * 1000 && raw / ((now - started) / 1000) < rate) {
        s.log(LOGINFO, `DATA slower than ${rate} bytes/s, closing`);
        await s.abort(REPLIES.dataTooSlow);
        return "gone";
      }
      // Wake up when the rate floor would be broken if nothing more came, not only at the timeout,
      // so a client that falls silent after 354 is cut as soon as it is too slow.
      const idleUntil = waitedSince + s.readTimeout(dataTimeout) * 1000;
      const slowAt = rate > 0 ? started + Math.max(grace * 1000, (raw / rate) * 1000) + 1 : Infinity;
      const w = await s.waitInput(Math.min(idleUntil, slowAt));
      if (w === "eof") {
        if (!s.closed) {
          s.send(REPLIES.incompleteData);
          await s.disconnect();
        }
        return "gone";
      }
      if (w === "timeout" && s.clock.now() >= waitedSince + s.readTimeout(dataTimeout) * 1000) {
        await s.timedOut();
        return "gone";
      }
      continue;
    }
    waitedSince = s.clock.now();
    const chunk = s.input.take();
    raw += chunk.length;
    const r = dec.feed(chunk);
    if (!dec.bareNewline && !dec.nul && !headerTooBig && r.content.length > 0) {
      if (header) {
        const end = header.push(r.content);
        if ((end?.header ?? header.length) > s.limits.maxHeaderSize) {
          headerTooBig = true;
        } else if (end) {
          txn.header(Header.parse(header.text(end.header)));
          transactionControl.setBodyStart(txn, end.body);
          header = undefined;
          if (!(await headersEnd(s))) return "gone";
        }
      }
      if (!headerTooBig && !spoolError) {
        try {
          transactionControl.write(txn, r.content);
        } catch (e) {
          // Keep reading to the real end so no message bytes are taken for commands.
          spoolError = e as Error;
          s.log(LOGERROR, `cannot spool the message: ${spoolError.message}`);
        }
      }
    }
    if (r.done) {
      s.input.unshift(r.rest);
      break;
    }
  }
  if (dec.bareNewline) return "bare";
  if (dec.nul) return "nul";
  if (dec.tooBig) return "big";
  if (headerTooBig) return "header";
  if (spoolError) return "spool";
  if (header) {
    // The data ended inside the header block: all of it is header, the body is empty.
    const end = header.finish();
    txn.header(Header.parse(header.text(end.header)));
    transactionControl.setBodyStart(txn, end.body);
    if (!(await headersEnd(s))) return "gone";
  }
  return "ok";
}

/** Fires data_headers_end; returns false when a plugin ended the session. */
async function headersEnd(s: SmtpSession): Promise<boolean> {
  const r = await s.runHooks("data_headers_end");
  if (r.code === DENY_DISCONNECT) {
    s.send(REPLIES.headersEndDenied, r.msg);
    await s.disconnect();
    return false;
  }
  if (r.code === DENYSOFT_DISCONNECT) {
    s.send(REPLIES.headersEndDeferred, r.msg);
    await s.disconnect();
    return false;
  }
  return true;
}

async function finishMessage(s: SmtpSession, txn: SmtpTransaction): Promise<void> {
  const header = txn.header() ?? txn.header(new Header())!;
  await s.runHooks("data_post_headers");
  const authservId = s.config("me-auth-results") ?? s.me;
  if (authservId !== "none") {
    // RFC 8601 §5: a field that claims our authserv-id came from outside: it goes, signed or not.
    removeForged(header, authservId);
    if (!dkimCoversAuthResults(header)) header.rename("Authentication-Results", "Original-Authentication-Results");
  }
  header.add("Received", await receivedLine(s), 0);
  if (authservId !== "none") header.add("Authentication-Results", authResults(s, txn, authservId), 0);

  const post = await s.runHooks("data_post");
  if (post.code === DONE) {
    await s.resetTransaction();
    return;
  }
  if (await refuse(s, post, REPLIES.dataPostRefusals)) return;
  await queue(s);
}

async function queue(s: SmtpSession): Promise<void> {
  const pre = await s.runHooks("queue_pre");
  if (pre.code === DONE) {
    await s.resetTransaction();
    return;
  }
  if (pre.timedOut || (pre.code !== OK && pre.code !== DECLINED && pre.code !== 0)) {
    if (!pre.timedOut) s.log(LOGERROR, `queue_pre returned an illegal value ${pre.code}`);
    s.send(REPLIES.queueDeclined, pre.msg);
    await s.resetTransaction();
    return;
  }
  const r = await s.runHooks("queue");
  switch (r.timedOut ? DECLINED : r.code) {
    case OK:
      s.send(REPLIES.queued, r.msg);
      break;
    case DENY:
      s.send(REPLIES.queueDenied, r.msg);
      break;
    case DENYSOFT:
      s.send(REPLIES.queueDeferred, r.msg);
      break;
    case DONE:
      break;
    default:
      s.send(REPLIES.queueDeclined, r.msg);
  }
  const post = await s.runHooks("queue_post");
  if (post.code !== OK && post.code !== 0 && post.code !== DECLINED) {
    s.log(LOGERROR, `queue_post: ${post.msg.join(" ")}`);
  }
  await s.resetTransaction();
}

async function receivedLine(s: SmtpSession): Promise<string> {
  const c = s.connection;
  let proto = c.hello === "helo" ? "SMTP" : "ESMTP";
  if (c.tls) proto += "S";
  if (s.authenticated()) proto += "A";
  const authHeader = s.authenticated() ? `(smtp-auth username ${s.authUser}, mechanism ${s.authMechanism})` : "";
  const sslHeader = c.tls ? `(${c.tls_cipher} encrypted)` : "";
  const r = await s.runHooks("received_line", proto, authHeader, sslHeader);
  if (r.code === OK && r.msg.length) return r.msg.join("\n");
  const helo = (c.hello_host ?? "").replace(/[^\x21-\x7e]/g, "?");
  return `from ${c.remote_info} (HELO ${helo}) (${c.remote_ip})\n by ${s.me} (qpsmtpd/${VERSION}) with ${proto}${
    sslHeader ? ` ${sslHeader}` : ""
  }; ${rfc2822Date(new Date(s.clock.now()))}`;
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
