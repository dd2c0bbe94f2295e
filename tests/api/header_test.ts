/** headerMayHave: the quick look at the header as received that dkim and arc take before verifying. */
import { describe, expect, test } from "bun:test";
import { headerMayHave } from "../../src/api/header.ts";

/** A transaction whose data_stream() gives `text` in chunks of `size` bytes, and counts what was read. */
function txn(text: string, size = 7) {
  const bytes = Buffer.from(text, "latin1");
  const t = {
    read: 0,
    async *data_stream(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < bytes.length; i += size) {
        const chunk = bytes.subarray(i, i + size);
        t.read += chunk.length;
        yield chunk;
      }
    },
  };
  return t;
}

describe("headerMayHave", () => {
  test("a field of one of the names, in any case, folded or spaced before its colon", async () => {
    for (
      const header of [
        "DKIM-Signature: v=1",
        "dkim-signature:v=1",
        "DKIM-Signature :v=1",
        "DKIM-Signature\n\t: v=1",
        "From: a@example.org\nDKIM-SIGNATURE: v=1",
      ]
    ) {
      expect(await headerMayHave(txn(`${header}\nSubject: x\n\nbody\n`), ["ARC-Seal", "DKIM-Signature"])).toBe(true);
    }
  });
  test("none: only the header counts, and it is read no further than its end", async () => {
    const body = "DKIM-Signature: in the body\n".repeat(200);
    const t = txn(`From: a@example.org\nSubject: DKIM-Signature mentioned\n\n${body}`);
    expect(await headerMayHave(t, ["DKIM-Signature"])).toBe(false);
    expect(t.read).toBeLessThan(80);
    expect(await headerMayHave(txn("\nDKIM-Signature: after an empty first line\n"), ["DKIM-Signature"])).toBe(true);
    expect(await headerMayHave(txn("From: a@example.org\n"), ["DKIM-Signature"])).toBe(false);
    expect(await headerMayHave(txn(""), ["DKIM-Signature"])).toBe(false);
    // No empty line within the first MB (a BINARYMIME message keeps its CRLFs): true, read no further.
    const crlf = txn(`From: a@example.org\r\n\r\n${"body line\r\n".repeat(300_000)}`, 65536);
    expect(await headerMayHave(crlf, ["DKIM-Signature"])).toBe(true);
    expect(crlf.read).toBeLessThan(1_200_000);
  });
});
