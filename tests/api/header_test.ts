/** Header (parsing and the field operations, by name in any case), and headerMayHave: the quick look at the header as received that dkim and arc take before verifying. */
import { describe, expect, test } from "bun:test";
import { Header, headerMayHave } from "../../src/api/header.ts";

describe("Header", () => {
  test("parse keeps fields with their folding, drops lines that are not fields, and reads an mbox From line as Mail-From", () => {
    const h = Header.parse(
      "From mailer Tue Nov 24 2026\nSubject: one\n two\nBad Name: x\nX\x7fY: z\n: empty name\nno colon\nA:b\n\tfolded\nX-\u00e9: non-ASCII\nReceived: r1\n",
    );
    expect(h.tags()).toEqual(["Mail-From", "Subject", "A", "Received"]);
    expect(h.get("subject")).toEqual(["one\n two\n"]);
    expect(h.get("a")).toEqual(["b\n\tfolded\n"]);
    expect(h.as_string()).toBe("Mail-From: mailer Tue Nov 24 2026\nSubject: one\n two\nA:b\n\tfolded\nReceived: r1\n");
  });

  test("every operation finds a field by its name in any case", () => {
    const h = Header.parse("Received: r1\nSUBJECT: s\nreceived: r2\nX-Spam: 1\n");
    expect(h.count("RECEIVED")).toBe(2);
    expect(h.get("Received", 1)).toBe("r2\n");
    h.add("received", "r0", 0);
    h.add("Received", "r1.5", 2);
    expect(h.get("rEcEiVeD")).toEqual(["r0\n", "r1\n", "r1.5\n", "r2\n"]);
    h.replace("subject", "new");
    expect(h.get("Subject")).toEqual(["new\n"]);
    h.rename("x-spam", "X-Old-Spam");
    expect(h.get("X-OLD-SPAM")).toEqual(["1\n"]);
    expect(h.delete("RECEIVED", 1)).toBe(1);
    expect(h.delete("Received")).toBe(3);
    expect(h.as_string()).toBe("subject: new\nX-Old-Spam: 1\n");
  });
});

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
