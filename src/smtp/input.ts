/**
 * The per-connection input buffer and strict CRLF command-line framing.
 *
 * Only CR LF ends a command line. A bare LF is reported, never treated as a line end
 * (SMTP smuggling); a line over the limit is reported once and the rest of it, up to the next
 * LF, is dropped so memory stays bounded whatever the client sends.
 * @module
 */

export type LineResult =
  | { readonly kind: "line"; readonly text: string }
  /** A line ended by a bare LF; the text is what preceded it. */
  | { readonly kind: "bare_lf"; readonly text: string }
  /** The line grew past the limit; the rest of it is discarded up to the next LF. */
  | { readonly kind: "too_long" }
  | { readonly kind: "need_more" };

const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);
const NEED_MORE: LineResult = { kind: "need_more" };
const TOO_LONG: LineResult = { kind: "too_long" };

export class InputBuffer {
  #buf: Buffer = EMPTY;
  #start = 0;
  #skipping = false;

  /** Bytes buffered and not yet consumed. */
  get size(): number {
    return this.#buf.length - this.#start;
  }

  push(chunk: Uint8Array): void {
    const rest = this.#buf.length - this.#start;
    if (rest === 0) {
      // A socket gives Buffers: keep it as it is. (Asking a typed array for its .buffer makes the
      // runtime build an ArrayBuffer object for it, every time: measurable per line.)
      this.#buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      this.#buf = Buffer.concat([this.#buf.subarray(this.#start), chunk]);
    }
    this.#start = 0;
  }

  /** The buffered input starts like a TLS handshake record (a ClientHello on a plaintext port). */
  looksLikeTls(): boolean {
    return this.size >= 2 && this.#buf[this.#start] === 0x16 && this.#buf[this.#start + 1] === 0x03;
  }

  /** Drops every buffered byte, a partial line included (STARTTLS). */
  clear(): void {
    this.#buf = EMPTY;
    this.#start = 0;
    this.#skipping = false;
  }

  /** Takes all buffered bytes (for the DATA decoder). */
  take(): Buffer {
    const b = this.#buf.subarray(this.#start);
    this.clear();
    return b;
  }

  /** Takes at most `max` buffered bytes (a BDAT chunk). */
  takeUpTo(max: number): Buffer {
    if (this.size <= max) return this.take();
    const b = this.#buf.subarray(this.#start, this.#start + max);
    this.#start += max;
    return b;
  }

  /** Puts bytes back in front (what followed the end of DATA). */
  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#buf = this.size === 0 ? bytes : Buffer.concat([bytes, this.#buf.subarray(this.#start)]);
    this.#start = 0;
  }

  /** Reads one command line of at most `max` bytes (CRLF excluded). */
  readLine(max: number): LineResult {
    for (;;) {
      const buf = this.#buf;
      const start = this.#start;
      const lf = buf.indexOf(LF, start);
      if (this.#skipping) {
        if (lf < 0) {
          this.clear();
          this.#skipping = true;
          return NEED_MORE;
        }
        this.#start = lf + 1;
        this.#skipping = false;
        continue;
      }
      if (lf < 0) {
        if (buf.length - start > max + 1) {
          this.clear();
          this.#skipping = true;
          return TOO_LONG;
        }
        return NEED_MORE;
      }
      this.#start = lf + 1;
      if (lf === start || buf[lf - 1] !== CR) {
        return { kind: "bare_lf", text: buf.toString("latin1", start, lf) };
      }
      if (lf - 1 - start > max) return TOO_LONG;
      return { kind: "line", text: buf.toString("latin1", start, lf - 1) };
    }
  }
}
