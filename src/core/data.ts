/**
 * DATA: the data hook, then the message through the strict dot-stuffing decoder into the
 * intake, then the end of the message (`message.ts`).
 * @module
 */
import { DataDecoder } from "../smtp/data_decoder.ts";
import { bdatBegun } from "./bdat.ts";
import { DataWait, finishMessage, Intake, type Received, refuseReceived } from "./message.ts";
import { refuse } from "./refusals.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";
import { type SmtpTransaction, transactionControl } from "./transaction.ts";

export async function cmdData(s: SmtpSession): Promise<void> {
  const open = s.hasTransaction() ? s.transaction : undefined;
  // RFC 3030 3: a transaction that began with BDAT, or declared a binary body, has no DATA.
  if (open && bdatBegun(open)) {
    s.send(REPLIES.dataAfterBdat);
    return;
  }
  if (open?.mail_options().body === "BINARYMIME") {
    s.send(REPLIES.binaryNeedsBdat);
    return;
  }
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
  if (got !== "ok") return refuseReceived(s, got);
  await finishMessage(s, txn);
}

/** Reads the message up to the real end of data. The client is always read to the end. */
async function receive(s: SmtpSession, txn: SmtpTransaction): Promise<Received> {
  const dec = new DataDecoder(s.limits.databytes > 0 ? s.limits.databytes : Infinity);
  const intake = new Intake(s, txn);
  const wait = new DataWait(s);
  /** One output buffer for every chunk once the message goes to a file (nothing keeps it then). */
  let scratch: Buffer | undefined;
  for (;;) {
    if (s.input.size === 0) {
      if ((await wait.wait()) === "gone") return "gone";
      continue;
    }
    const chunk = s.input.take();
    wait.got(chunk.length);
    const onDisk = transactionControl.onDisk(txn);
    if (onDisk && (scratch === undefined || scratch.length < chunk.length + 2)) {
      scratch = Buffer.allocUnsafe(Math.max(chunk.length + 2, 65536));
    }
    const r = dec.feed(chunk, onDisk ? scratch : undefined);
    // In memory the decoder's output is a fresh buffer each time: the spool may keep it without a copy.
    if (!dec.bareNewline && !dec.nul) {
      const pushed = intake.push(r.content, !onDisk);
      if (!(pushed instanceof Promise ? await pushed : pushed)) return "gone";
    }
    if (r.done) {
      s.input.unshift(r.rest);
      break;
    }
  }
  if (dec.bareNewline) return "bare";
  if (dec.nul) return "nul";
  if (dec.tooBig) return "big";
  return intake.end();
}
