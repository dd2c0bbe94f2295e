/**
 * The header block of a message as it arrives: bytes are appended as they come and each byte is
 * looked at once, so a header sent in many small pieces costs time linear in its size.
 * @module
 */

/** Where the header block ends, as offsets into the message. */
export interface HeaderEnd {
  /** The header block is `[0, header)`. */
  readonly header: number;
  /** The body starts here (after the blank line, or at the first line that is not a field). */
  readonly body: number;
}

const LF = 10;
const FIELD = /^[!-9;-~]+:/;

const EMPTY = Buffer.alloc(0);

export class HeaderBlock {
  #buf: Buffer = EMPTY;
  #len = 0;
  /** Start of the first line not yet judged. */
  #line = 0;
  /** Bytes before this were searched for a line end already. */
  #searched = 0;

  /** Bytes held. */
  get length(): number {
    return this.#len;
  }

  /**
   * Appends message bytes (LF line ends); returns the end of the block once it is known. A first
   * chunk that holds the whole block is looked at where it is, not copied: ask for `text` before
   * that chunk's buffer is used again.
   */
  push(chunk: Uint8Array): HeaderEnd | undefined {
    if (this.#len === 0) {
      this.#buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      this.#len = chunk.length;
      const end = this.#scan();
      if (end) return end;
      // The block goes on: keep a copy (the caller may reuse its buffer). 2 KB is below the size
      // Buffer.allocUnsafe takes from its shared pool.
      this.#buf = Buffer.allocUnsafe(Math.max(2048, chunk.length));
      this.#buf.set(chunk, 0);
      return undefined;
    }
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    return this.#scan();
  }

  /** The data ended inside the block: where it ends as if a blank line followed. */
  finish(): HeaderEnd {
    const real = this.#len;
    const end = this.push(Buffer.from("\n\n"))!;
    this.#len = real;
    return { header: Math.min(end.header, real), body: Math.min(end.body, real) };
  }

  /** The block's text up to `end` (latin1: bytes as they came). */
  text(end: number): string {
    return this.#buf.toString("latin1", 0, end);
  }

  #scan(): HeaderEnd | undefined {
    const buf = this.#buf.subarray(0, this.#len);
    for (;;) {
      const start = this.#line;
      const lf = buf.indexOf(LF, Math.max(start, this.#searched));
      if (lf < 0) {
        this.#searched = this.#len;
        return undefined;
      }
      if (lf === start) return { header: start, body: lf + 1 };
      const first = buf[start]!;
      const continuation = (first === 32 || first === 9) && start > 0;
      const field = FIELD.test(buf.toString("latin1", start, Math.min(lf, start + 80))) ||
        (start === 0 && buf.toString("latin1", 0, 5) === "From ");
      // A line that is neither ends the block; it is the body's first line, so nothing is lost.
      if (!continuation && !field) return { header: start, body: start };
      this.#line = lf + 1;
      this.#searched = lf + 1;
    }
  }
}
