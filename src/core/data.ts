/**
 * DATA: the data hook, receiving the message into the spool through the strict decoder, the
 * header hooks, the Received and Authentication-Results headers, data_post and the queue stage.
 * @module
 */
import { DataDecoder } from "../smtp/data_decoder.ts";
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, LOGERROR, LOGINFO, OK } from "./codes.ts";
import { refuse } from "./refusals.ts";
import { Header } from "./header.ts";
import type { Session } from "./session.ts";
import type { Transaction } from "./transaction.ts";

export async function cmdData(s: Session): Promise<void> {
  const r = await s.run_hooks("data");
  const denied = "Message denied";
  const later = "Message denied temporarily";
  if (await refuse(s, r, { deny: [554, denied], denysoft: [451, later], denyDisconnect: [554, denied], denysoftDisconnect: [451, later], reset: true })) return;
  const txn = s.has_transaction() ? s.transaction : undefined;
  if (!txn?.sender()) {
    s.respond(503, "MAIL first");
    return;
  }
  if (txn.recipients().length === 0) {
    s.respond(503, "RCPT first");
    return;
  }
  // RFC 2920: DATA ends a pipelined group; bytes sent before our 354 are a protocol violation
  // and, on a hostile client, the start of a smuggling attempt.
  if (s.input.size > 0) {
    s.respond(554, "5.5.0 Error: SMTP protocol synchronization");
    await s.disconnect();
    return;
  }
  s.respond(354, "go ahead");
  const got = await receive(s, txn);
  if (got === "gone") return;
  if (got !== "ok") {
    await s.reset_transaction();
    if (got === "bare") s.respond(550, "5.5.2 Error: bare <CR> or <LF> in message; lines must end in CRLF");
    else if (got === "big") s.respond(552, "Message too big!");
    else if (got === "header") s.respond(552, "5.3.4 Message header too large");
    else if (got === "spool") s.respond(451, "4.3.0 Error writing the message; try again later");
    return;
  }
  await finishMessage(s, txn);
}

type Received = "ok" | "bare" | "big" | "header" | "spool" | "gone";

/** Reads the message up to the real end of data. The client is always read to the end. */
async function receive(s: Session, txn: Transaction): Promise<Received> {
  const dec = new DataDecoder(s.limits.databytes > 0 ? s.limits.databytes : Infinity);
  const started = Date.now();
  let raw = 0;
  let header: Buffer | undefined = Buffer.alloc(0);
  let headerTooBig = false;
  let spoolError: Error | undefined;
  for (;;) {
    if (s.input.size === 0) {
      const elapsed = (Date.now() - started) / 1000;
      if (s.limits.dataRateMin > 0 && elapsed > s.limits.dataRateGrace && raw / elapsed < s.limits.dataRateMin) {
        s.log(LOGINFO, `DATA slower than ${s.limits.dataRateMin} bytes/s, closing`);
        await s.abort("4.4.2 DATA too slow, closing connection");
        return "gone";
      }
      if (!(await s.waitInput(Date.now() + s.limits.dataTimeout * 1000))) {
        if (!s.closed) {
          s.respond(451, "Incomplete DATA");
          await s.disconnect();
        }
        return "gone";
      }
      continue;
    }
    const chunk = s.input.take();
    raw += chunk.length;
    const r = dec.feed(chunk);
    if (!dec.bareNewline && !headerTooBig && r.content.length > 0) {
      if (header) {
        header = Buffer.concat([header, r.content]);
        const end = headerEnd(header);
        if ((end?.header ?? header.length) > s.limits.maxHeaderSize) {
          headerTooBig = true;
        } else if (end) {
          txn.header(Header.parse(header.toString("latin1", 0, end.header)));
          txn.set_body_start(end.body);
          header = undefined;
          if (!(await headersEnd(s))) return "gone";
        }
      }
      if (!headerTooBig && !spoolError) {
        try {
          txn.body_write(r.content);
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
  if (dec.tooBig) return "big";
  if (headerTooBig) return "header";
  if (spoolError) return "spool";
  if (header) {
    // The data ended inside the header block: all of it is header, the body is empty.
    const end = headerEnd(Buffer.concat([header, Buffer.from("\n\n")]))!;
    txn.header(Header.parse(header.toString("latin1", 0, Math.min(end.header, header.length))));
    txn.set_body_start(Math.min(end.body, header.length));
    if (!(await headersEnd(s))) return "gone";
  }
  return "ok";
}

/**
 * Where the header block ends: at the first empty line (the body starts after it) or at the
 * first line that is not a header field (the body starts with it, so nothing is lost).
 * Undefined while the block may still continue.
 */
function headerEnd(buf: Buffer): { header: number; body: number } | undefined {
  let start = 0;
  for (;;) {
    const lf = buf.indexOf(10, start);
    if (lf < 0) return undefined;
    if (lf === start) return { header: start, body: lf + 1 };
    const first = buf[start]!;
    const continuation = (first === 32 || first === 9) && start > 0;
    const field = /^[!-9;-~]+:/.test(buf.toString("latin1", start, Math.min(lf, start + 80))) ||
      (start === 0 && buf.toString("latin1", 0, 5) === "From ");
    if (!continuation && !field) return { header: start, body: start };
    start = lf + 1;
  }
}

/** Fires data_headers_end; returns false when a plugin ended the session. */
async function headersEnd(s: Session): Promise<boolean> {
  const r = await s.run_hooks("data_headers_end");
  if (r.code === DENY_DISCONNECT) {
    s.reply(554, r, "Message denied");
    await s.disconnect();
    return false;
  }
  if (r.code === DENYSOFT_DISCONNECT) {
    s.reply(421, r, "Message denied temporarily");
    await s.disconnect();
    return false;
  }
  return true;
}

async function finishMessage(s: Session, txn: Transaction): Promise<void> {
  const header = txn.header() ?? txn.header(new Header())!;
  await s.run_hooks("data_post_headers");
  const authservId = s.config("me-auth-results") ?? s.me;
  if (authservId !== "none" && !dkimCoversAuthResults(header)) {
    header.rename("Authentication-Results", "Original-Authentication-Results");
  }
  header.add("Received", await receivedLine(s), 0);
  if (authservId !== "none") header.add("Authentication-Results", authResults(s, txn, authservId), 0);

  const post = await s.run_hooks("data_post");
  if (post.code === DONE) {
    await s.reset_transaction();
    return;
  }
  const denied = "Message denied";
  const later = "Message denied temporarily";
  if (await refuse(s, post, { deny: [552, denied], denysoft: [452, later], denyDisconnect: [552, denied], denysoftDisconnect: [452, later], reset: true })) return;
  await queue(s);
}

async function queue(s: Session): Promise<void> {
  const pre = await s.run_hooks("queue_pre");
  if (pre.code === DONE) {
    await s.reset_transaction();
    return;
  }
  if (pre.code !== OK && pre.code !== DECLINED && pre.code !== 0) {
    s.log(LOGERROR, `queue_pre returned an illegal value ${pre.code}`);
    s.reply(451, pre, "Queuing declined or disabled; try again later");
    await s.reset_transaction();
    return;
  }
  const r = await s.run_hooks("queue");
  switch (r.code) {
    case OK:
      s.reply(250, r, "Queued");
      break;
    case DENY:
      s.reply(552, r, "Message denied");
      break;
    case DENYSOFT:
      s.reply(452, r, "Message denied temporarily");
      break;
    case DONE:
      break;
    default:
      s.reply(451, r, "Queuing declined or disabled; try again later");
  }
  const post = await s.run_hooks("queue_post");
  if (post.code !== OK && post.code !== 0 && post.code !== DECLINED) {
    s.log(LOGERROR, `queue_post: ${post.msg.join(" ")}`);
  }
  await s.reset_transaction();
}

async function receivedLine(s: Session): Promise<string> {
  const c = s.connection;
  let proto = c.hello === "helo" ? "SMTP" : "ESMTP";
  if (c.tls) proto += "S";
  if (s.authenticated()) proto += "A";
  const authHeader = s.authenticated() ? `(smtp-auth username ${s.auth_user}, mechanism ${s.auth_mechanism})` : "";
  const sslHeader = c.tls ? `(${c.tls_cipher} encrypted)` : "";
  const r = await s.run_hooks("received_line", proto, authHeader, sslHeader);
  if (r.code === OK && r.msg.length) return r.msg.join("\n");
  const helo = (c.hello_host ?? "").replace(/[^\x21-\x7e]/g, "?");
  return `from ${c.remote_info} (HELO ${helo}) (${c.remote_ip})\n by ${s.me} (qpsmtpd/${s.version}) with ${proto}${
    sslHeader ? ` ${sslHeader}` : ""
  }; ${rfc2822Date(new Date())}`;
}

function authResults(s: Session, txn: Transaction, authservId: string): string {
  const parts = [authservId];
  parts.push(s.authenticated() ? `auth=pass (${s.auth_mechanism?.toLowerCase()}) smtp.auth=${s.auth_user}` : "auth=none");
  for (const more of [s.connection.notes("authentication_results"), txn.notes("authentication_results")]) {
    if (typeof more === "string" && more) parts.push(more);
  }
  return parts.join("; ");
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
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())} ${sign}${p(Math.floor(a / 60))}${p(a % 60)}`;
}
