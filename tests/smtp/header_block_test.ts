/** The header block as it arrives: its end is found wherever the bytes are split. */
import { describe, expect, test } from "bun:test";
import { HeaderBlock } from "../../src/smtp/header_block.ts";

const MESSAGE = "From x Mon Jan 1\nSubject: hi\n\tcontinued\nX-A: 1\n\nbody\nmore\n";

describe("HeaderBlock", () => {
  test("finds the blank line that ends the block, at every split of the input", () => {
    for (let cut = 0; cut <= MESSAGE.length; cut++) {
      const b = new HeaderBlock();
      const first = b.push(Buffer.from(MESSAGE.slice(0, cut)));
      const end = first ?? b.push(Buffer.from(MESSAGE.slice(cut)));
      expect(end).toEqual({ header: 47, body: 48 });
      expect(b.text(end!.header)).toBe("From x Mon Jan 1\nSubject: hi\n\tcontinued\nX-A: 1\n");
    }
  });

  test("a caller that reuses its buffer after each push loses nothing of the block", () => {
    // As the DATA reader does once a message goes to disk: one scratch buffer for every chunk.
    for (let cut = 1; cut <= MESSAGE.length; cut++) {
      const b = new HeaderBlock();
      const scratch = Buffer.alloc(MESSAGE.length);
      const feed = (text: string) => {
        scratch.fill(0x21);
        scratch.write(text, "latin1");
        const end = b.push(scratch.subarray(0, text.length));
        // What the caller reads at once is right; then it writes its next chunk over the buffer.
        const header = end ? b.text(end.header) : undefined;
        scratch.fill(0x21);
        return { end, header };
      };
      let got = feed(MESSAGE.slice(0, cut));
      if (!got.end) got = feed(MESSAGE.slice(cut));
      expect(got.end).toEqual({ header: 47, body: 48 });
      expect(got.header).toBe("From x Mon Jan 1\nSubject: hi\n\tcontinued\nX-A: 1\n");
    }
  });

  test("a line that is not a field ends the block and starts the body", () => {
    const b = new HeaderBlock();
    expect(b.push(Buffer.from("Subject: a\nthis is not a header\nrest\n"))).toEqual({ header: 11, body: 11 });
  });

  test("data that ends inside the block is all header", () => {
    const b = new HeaderBlock();
    expect(b.push(Buffer.from("Subject: a\nX-B: b"))).toBeUndefined();
    expect(b.finish()).toEqual({ header: 17, body: 17 });
    expect(b.length).toBe(17);
  });

  test("a long line in many pieces is searched once (the end is found after the last piece)", () => {
    const b = new HeaderBlock();
    expect(b.push(Buffer.from("X-Long: "))).toBeUndefined();
    for (let i = 0; i < 1024; i++) expect(b.push(Buffer.alloc(1024, 97))).toBeUndefined();
    expect(b.push(Buffer.from("\n\nbody"))).toEqual({ header: 8 + 1024 * 1024 + 1, body: 8 + 1024 * 1024 + 2 });
  });
});
