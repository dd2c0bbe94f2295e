import { describe, expect, test } from "bun:test";
import { ChunkDecoder } from "../../src/smtp/chunk_decoder.ts";

/** Feeds `pieces` and returns the decoded text and the flags. */
function decode(pieces: string[], binary = false): { out: string; bare: boolean; nul: boolean } {
  const d = new ChunkDecoder(binary);
  const parts = pieces.map((p) => Buffer.from(d.feed(Buffer.from(p, "latin1"))));
  parts.push(Buffer.from(d.end()));
  return { out: Buffer.concat(parts).toString("latin1"), bare: d.bareNewline, nul: d.nul };
}

describe("ChunkDecoder", () => {
  test("CRLF becomes LF, in any split, one byte at a time included", () => {
    const text = "Subject: a\r\n\r\nline\r\n.dot\r\n";
    expect(decode([text])).toEqual({ out: "Subject: a\n\nline\n.dot\n", bare: false, nul: false });
    expect(decode([...text])).toEqual({ out: "Subject: a\n\nline\n.dot\n", bare: false, nul: false });
  });

  test("bare CR, bare LF and NUL are flagged; a CR at the very end is bare", () => {
    expect(decode(["a\nb\r\n"]).bare).toBe(true);
    expect(decode(["a\rb\r\n"]).bare).toBe(true);
    expect(decode(["a\r", "b"]).bare).toBe(true);
    expect(decode(["ab\r"]).bare).toBe(true);
    expect(decode(["a\0b\r\n"]).nul).toBe(true);
  });

  test("binary: the header block is text, everything after its blank line passes as it is", () => {
    const raw = "\r\n\n\r\0\xff";
    expect(decode(["X: 1\r\n\r", `\n${raw}`], true)).toEqual({ out: `X: 1\n\n${raw}`, bare: false, nul: false });
    expect(decode(["\r\n", raw], true).out).toBe(`\n${raw}`);
  });
});
