/**
 * BDAT chunk content (RFC 3030): no dot-stuffing and no terminator, the byte count frames it.
 * Text bodies go to the spool with LF line ends like DATA: CR LF becomes LF (a CR that ends one
 * chunk and the LF that starts the next are one line end), and a bare CR, a bare LF or a NUL is
 * flagged so the message is refused after its last chunk. A BINARYMIME body is taken as it is
 * after the header block's blank line.
 * @module
 */

const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);

export class ChunkDecoder {
  readonly #binary: boolean;
  /** A CR ended the previous chunk. */
  #cr = false;
  /** Nothing yet on the current line. */
  #lineEmpty = true;
  /** Past the blank line of a binary message: bytes pass as they are. */
  #raw = false;
  /** A bare CR or bare LF was seen in text. */
  bareNewline = false;
  /** A NUL byte was seen in text. */
  nul = false;

  /** @param binary BODY=BINARYMIME: only the header block is text */
  constructor(binary: boolean) {
    this.#binary = binary;
  }

  /** Decodes one piece of a chunk (pieces of consecutive chunks may be fed in any split). */
  feed(chunk: Uint8Array): Uint8Array {
    if (this.#raw) return chunk;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = buf.length;
    const out = Buffer.allocUnsafe(n + 1);
    let o = 0;
    // The next CR, LF and NUL (-1: none left), each searched for again only once passed, so a
    // chunk costs time linear in its size whatever its line ends.
    let crAt = buf.indexOf(CR, 0);
    let lfAt = buf.indexOf(LF, 0);
    let nulAt = this.nul ? -1 : buf.indexOf(0, 0);
    let i = 0;
    while (i < n) {
      if (!this.#cr) {
        // Fast path: ordinary bytes up to the next CR or LF go over in one copy.
        if (crAt >= 0 && crAt < i) crAt = buf.indexOf(CR, i);
        if (lfAt >= 0 && lfAt < i) lfAt = buf.indexOf(LF, i);
        let stop = crAt >= 0 ? crAt : n;
        if (lfAt >= 0 && lfAt < stop) stop = lfAt;
        if (stop > i) {
          if (nulAt >= 0 && nulAt < i) nulAt = buf.indexOf(0, i);
          if (nulAt >= 0 && nulAt < stop) {
            this.nul = true;
            nulAt = -1;
          }
          o += buf.copy(out, o, i, stop);
          this.#lineEmpty = false;
          i = stop;
          continue;
        }
      }
      const c = buf[i]!;
      if (this.#cr) {
        this.#cr = false;
        if (c === LF) {
          out[o++] = LF;
          if (this.#binary && this.#lineEmpty) {
            this.#raw = true;
            return Buffer.concat([out.subarray(0, o), buf.subarray(i + 1)]);
          }
          this.#lineEmpty = true;
          i++;
          continue;
        }
        this.bareNewline = true;
        out[o++] = CR;
        this.#lineEmpty = false;
      }
      if (c === CR) {
        this.#cr = true;
      } else if (c === LF) {
        this.bareNewline = true;
        out[o++] = LF;
        this.#lineEmpty = true;
      } else {
        if (c === 0) this.nul = true;
        out[o++] = c;
        this.#lineEmpty = false;
      }
      i++;
    }
    return out.subarray(0, o);
  }

  /** The last chunk ended: a CR still held was a bare CR. */
  end(): Uint8Array {
    if (!this.#cr) return EMPTY;
    this.#cr = false;
    this.bareNewline = true;
    return Buffer.from([CR]);
  }
}
