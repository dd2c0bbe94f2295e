/**
 * BDAT (RFC 3030 CHUNKING, with BINARYMIME): `BDAT n [LAST]` is followed by exactly n octets.
 * The count frames the data, so nothing inside a chunk is ever read as a command, and a chunk
 * that is refused is still read to its end. The first chunk runs the data hook, the chunks go
 * through the same intake as DATA (header hooks, databytes, spool), and LAST ends the message
 * as the end of DATA does. A connection that ends inside a chunk keeps nothing.
 * @module
 */
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE } from "../api/codes.ts";
import { ChunkDecoder } from "../smtp/chunk_decoder.ts";
import { DataWait, finishMessage, Intake, refuseReceived } from "./message.ts";
import { refuse } from "./refusals.ts";
import { REPLIES, type Reply } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";
import type { SmtpTransaction } from "./transaction.ts";

/** A transaction's BDAT state, from its first chunk until it ends. */
interface Chunking {
  readonly decoder: ChunkDecoder;
  readonly intake: Intake;
  /** Octets declared so far. */
  size: number;
}

const chunking = new WeakMap<SmtpTransaction, Chunking>();

/** Whether `txn` received a BDAT chunk (DATA is then refused). */
export function bdatBegun(txn: SmtpTransaction): boolean {
  return chunking.has(txn);
}

/** A chunk size beyond this is not a size any client means; such a BDAT is taken as garbage. */
const MAX_COUNT_DIGITS = 15;

export async function cmdBdat(s: SmtpSession, rest: string): Promise<void> {
  const m = new RegExp(`^(\\d{1,${MAX_COUNT_DIGITS}})( +LAST)? *$`, "i").exec(rest);
  if (!m) {
    // Without a count the chunk's end cannot be found: what follows could only be misread.
    s.send(REPLIES.badBdat);
    await s.disconnect();
    return;
  }
  const count = Number(m[1]);
  const last = m[2] !== undefined;
  const txn = s.hasTransaction() ? s.transaction : undefined;
  let refusal: Reply | undefined;
  if (!txn?.sender()) refusal = REPLIES.senderFirst;
  else if (txn.recipients().length === 0) refusal = REPLIES.recipientFirst;
  let state = txn && chunking.get(txn);
  if (!refusal && txn && !state) {
    const r = await s.runHooks("data");
    if (r.code === DENY || r.code === DENYSOFT || r.code === DENY_DISCONNECT || r.code === DENYSOFT_DISCONNECT || r.code === DONE) {
      if (!(await discard(s, count))) return;
      await refuse(s, r, REPLIES.dataRefusals);
      return;
    }
    if (s.closed) return;
    state = { decoder: new ChunkDecoder(txn.mail_options().body === "BINARYMIME"), intake: new Intake(s, txn), size: 0 };
    chunking.set(txn, state);
  }
  if (refusal || !state || !txn) {
    if (await discard(s, count)) s.send(refusal ?? REPLIES.senderFirst);
    return;
  }
  state.size += count;
  const limit = s.limits.databytes;
  if (limit > 0 && state.size > limit) {
    if (!(await discard(s, count))) return;
    await s.resetTransaction();
    s.send(REPLIES.bdatTooBig);
    return;
  }
  if (!(await receive(s, count, state))) {
    // The client left, or a plugin ended the session, inside the chunk: keep nothing.
    await s.resetTransaction();
    return;
  }
  if (!last) {
    s.send(REPLIES.bdatChunkOk(count));
    return;
  }
  const tail = state.decoder.end();
  if (tail.length && !(await state.intake.push(tail))) return;
  const got = state.decoder.bareNewline ? "bare" : state.decoder.nul ? "nul" : await state.intake.end();
  if (got === "gone") return;
  if (got !== "ok") return refuseReceived(s, got);
  await finishMessage(s, txn);
}

/** Reads `count` octets into the transaction; false when the session ended first. */
async function receive(s: SmtpSession, count: number, state: Chunking): Promise<boolean> {
  return readOctets(s, count, async (bytes) => {
    const content = state.decoder.feed(bytes);
    // After a problem the rest is only read, never stored.
    if (state.decoder.bareNewline || state.decoder.nul) return true;
    return state.intake.push(content);
  });
}

/** Reads and drops `count` octets; false when the session ended first. */
function discard(s: SmtpSession, count: number): Promise<boolean> {
  return readOctets(s, count, () => true);
}

/** Hands exactly `count` octets of input to `sink` as they come; false when the session ended. */
async function readOctets(s: SmtpSession, count: number, sink: (bytes: Uint8Array) => boolean | Promise<boolean>): Promise<boolean> {
  const wait = new DataWait(s);
  let left = count;
  while (left > 0) {
    if (s.closed) return false;
    if (s.input.size === 0) {
      if ((await wait.wait()) === "gone") return false;
      continue;
    }
    const bytes = s.input.takeUpTo(left);
    left -= bytes.length;
    wait.got(bytes.length);
    if (!(await sink(bytes))) return false;
  }
  return !s.closed;
}
