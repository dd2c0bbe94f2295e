/**
 * The DATA byte state machine: finds the end of data, unstuffs dots, normalises CRLF to LF and
 * counts the size.
 *
 * Only the five bytes CR LF . CR LF end the data (the first CR LF may be the one that ended the
 * DATA command). A bare CR or bare LF anywhere sets `bareNewline` and is kept as data, so a
 * smuggled `LF . CR LF` can never end the message early; the session rejects such a message only
 * after the real end. Past `maxSize` content is counted but not emitted, so memory stays bounded.
 * @module
 */

const LF = 10;
const CR = 13;
const DOT = 46;

/** Decoder states: at the start of a line; after a leading `.` (already unstuffed); after a
 * leading `.` CR; inside a line; inside a line after a CR not yet emitted. */
const S = { Sol: 0, Dot: 1, DotCr: 2, Mid: 3, MidCr: 4 } as const;
type S = (typeof S)[keyof typeof S];

export interface DecodeResult {
  /** Normalised content decoded from this chunk (may be empty). */
  readonly content: Buffer;
  /** True when the end-of-data line was seen. */
  readonly done: boolean;
  /** Bytes that followed the end of data (pipelined commands); empty unless done. */
  readonly rest: Buffer;
}

export class DataDecoder {
  #state: S = S.Sol;
  /** Decoded bytes so far, including those not emitted past the limit. */
  size = 0;
  /** A bare CR or bare LF was seen. */
  bareNewline = false;
  /** A NUL byte was seen (RFC 5321 does not allow it in mail text; a next hop may drop it). */
  nul = false;
  readonly maxSize: number;

  /** @param maxSize bytes of content to emit before discarding (Infinity = no limit) */
  constructor(maxSize = Infinity) {
    this.maxSize = maxSize;
  }

  get tooBig(): boolean {
    return this.size > this.maxSize;
  }

  /**
   * Decodes `chunk`. The content is written into `into` when given (at least `chunk.length + 2`
   * bytes: a caller that does not keep the content may use one buffer for every chunk), else
   * into a new buffer.
   */
  feed(chunk: Buffer, into?: Buffer): DecodeResult {
    // Output never exceeds input plus one held-back CR.
    const out = into !== undefined && into.length >= chunk.length + 2 ? into : Buffer.allocUnsafe(chunk.length + 2);
    let o = 0;
    let i = 0;
    const n = chunk.length;
    let state: S = this.#state;
    const emit = (b: number): void => {
      out[o++] = b;
    };
    // Where the next CR is (-1: none left in this chunk), looked for again only once passed:
    // searching from every line start would make a chunk of bare-LF lines cost its size squared.
    let crAt = chunk.indexOf(CR, 0);
    while (i < n) {
      const c = chunk[i]!;
      switch (state) {
        case S.Sol:
          if (c === DOT) {
            state = S.Dot;
            i++;
          } else state = S.Mid;
          break;
        case S.Dot:
          if (c === CR) {
            state = S.DotCr;
            i++;
          } else state = S.Mid; // unstuffed: the dot is dropped
          break;
        case S.DotCr:
          if (c === LF) {
            this.#state = S.Sol;
            return this.#finish(out, o, true, chunk.subarray(i + 1));
          }
          // `.` CR x: the CR was bare
          this.bareNewline = true;
          emit(CR);
          state = S.Mid;
          break;
        case S.MidCr:
          if (c === LF) {
            emit(LF);
            i++;
            state = S.Sol;
          } else {
            this.bareNewline = true;
            emit(CR);
            state = S.Mid;
          }
          break;
        case S.Mid: {
          // Fast path: copy up to the next CR or LF in one go.
          const lf = chunk.indexOf(LF, i);
          const limit = lf < 0 ? n : lf;
          if (crAt >= 0 && crAt < i) crAt = chunk.indexOf(CR, i);
          const stop = crAt >= 0 && crAt < limit ? crAt : limit;
          if (stop > i) {
            o += chunk.copy(out, o, i, stop);
            i = stop;
          }
          if (i >= n) break;
          if (chunk[i] === CR) {
            state = S.MidCr;
            i++;
          } else {
            // LF without CR before it. The next line is not at a line start for end-of-data
            // purposes, so `LF . CR LF` (the Exchange Online smuggling case) cannot end the data.
            this.bareNewline = true;
            emit(LF);
            i++;
            state = S.Mid;
          }
          break;
        }
      }
    }
    this.#state = state;
    return this.#finish(out, o, false, Buffer.alloc(0));
  }

  #finish(out: Buffer, len: number, done: boolean, rest: Buffer): DecodeResult {
    if (!this.nul && out.subarray(0, len).indexOf(0) >= 0) this.nul = true;
    const before = this.size;
    this.size += len;
    let keep = len;
    if (this.size > this.maxSize) keep = Math.max(0, Math.min(len, this.maxSize - before));
    return { content: out.subarray(0, keep), done, rest };
  }
}
