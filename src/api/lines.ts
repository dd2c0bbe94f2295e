/**
 * Splits a stream of byte chunks (a message or body stream) into lines.
 * @module
 */

/** Splits chunks into UTF-8 lines that keep their LF (the last may lack one). */
export async function* linesOf(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = carry.length ? Buffer.concat([carry, c]) : c;
    let start = 0;
    let lf: number;
    while ((lf = buf.indexOf(10, start)) >= 0) {
      yield buf.toString("utf8", start, lf + 1);
      start = lf + 1;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  if (carry.length) yield carry.toString("utf8");
}
