import { describe, expect, test } from "bun:test";
import { DataDecoder } from "../../src/smtp/data_decoder.ts";

interface Outcome {
  content: string;
  done: boolean;
  rest: string;
  bare: boolean;
}

/** Feeds `input` in the given pieces and collects what the decoder made of it. */
function decode(pieces: Buffer[], max = Infinity): Outcome {
  const d = new DataDecoder(max);
  let content = "";
  for (let i = 0; i < pieces.length; i++) {
    const r = d.feed(pieces[i]!);
    content += r.content.toString("latin1");
    if (r.done) {
      const rest = Buffer.concat([r.rest, ...pieces.slice(i + 1)]).toString("latin1");
      return { content, done: true, rest, bare: d.bareNewline };
    }
  }
  return { content, done: false, rest: "", bare: d.bareNewline };
}

/** Every way of splitting `s` in two, plus one byte at a time, plus whole. */
function splits(s: string): Buffer[][] {
  const b = Buffer.from(s, "latin1");
  const out: Buffer[][] = [[b], [...b].map((x) => Buffer.from([x]))];
  for (let i = 1; i < b.length; i++) out.push([b.subarray(0, i), b.subarray(i)]);
  return out;
}

function sameAtEverySplit(input: string): Outcome {
  const [first, ...others] = splits(input).map((p) => decode(p));
  for (const o of others) expect(o).toEqual(first!);
  return first!;
}

describe("DataDecoder", () => {
  test("ends only at CRLF.CRLF and normalises CRLF to LF", () => {
    const o = sameAtEverySplit("Subject: x\r\n\r\nline\r\n.\r\nQUIT\r\n");
    expect(o).toEqual({ content: "Subject: x\n\nline\n", done: true, rest: "QUIT\r\n", bare: false });
  });

  test("a first line of . right after DATA is an empty message", () => {
    expect(sameAtEverySplit(".\r\n")).toEqual({ content: "", done: true, rest: "", bare: false });
  });

  test("unstuffs one leading dot: .hidden → hidden, ..x → .x", () => {
    const o = sameAtEverySplit(".hidden\r\n..x\r\n...\r\n.\r\n");
    expect(o.content).toBe("hidden\n.x\n..\n");
    expect(o.done).toBe(true);
  });

  const smuggling: Array<[string, string]> = [
    ["LF . LF", "body\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n"],
    ["LF . CR LF", "body\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n"],
    ["CR LF . LF", "body\r\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n"],
    ["CR . CR", "body\r.\rMAIL FROM:<evil@x>\r\nsmuggled\r\n.\r\n"],
    ["CR . CR LF", "body\r.\r\nMAIL FROM:<evil@x>\r\nsmuggled\r\n.\r\n"],
    ["CR LF . CR", "body\r\n.\rMAIL FROM:<evil@x>\r\nsmuggled\r\n.\r\n"],
    ["CR LF . CR CR LF", "body\r\n.\r\r\nMAIL FROM:<evil@x>\r\nsmuggled\r\n.\r\n"],
  ];
  for (const [name, input] of smuggling) {
    test(`${name} is not an end of data, and is flagged, at every byte split`, () => {
      const o = sameAtEverySplit(input + "NEXT\r\n");
      expect(o.done).toBe(true);
      expect(o.rest).toBe("NEXT\r\n");
      expect(o.content).toContain("MAIL FROM:<evil@x>");
      expect(o.bare).toBe(true);
    });
  }

  test("a dot line with junk is ordinary data", () => {
    const o = sameAtEverySplit("a\r\n.\0\r\n.\r\n");
    expect(o.content).toBe("a\n\0\n");
    expect(o.bare).toBe(false);
  });

  test("counts the size past the limit but does not emit it", () => {
    const big = "x".repeat(100) + "\r\n";
    const o = decode([Buffer.from(big.repeat(10) + ".\r\n")], 250);
    expect(o.done).toBe(true);
    expect(o.content.length).toBe(250);
    const d = new DataDecoder(250);
    d.feed(Buffer.from(big.repeat(10) + ".\r\n"));
    expect(d.size).toBe(1010);
    expect(d.tooBig).toBe(true);
  });

  test("a 1,000,000-byte line is kept whole", () => {
    const line = "y".repeat(1_000_000);
    const pieces = [];
    const b = Buffer.from(`${line}\r\n.\r\n`);
    for (let i = 0; i < b.length; i += 65536) pieces.push(b.subarray(i, i + 65536));
    const o = decode(pieces);
    expect(o.done).toBe(true);
    expect(o.content).toBe(`${line}\n`);
  });
});

describe("NUL bytes", () => {
  for (
    const [name, data] of [["CRLF NUL . CRLF", "a\r\n\0.\r\nb\r\n.\r\n"], ["CRLF . NUL CRLF", "a\r\n.\0\r\nb\r\n.\r\n"], [
      "a NUL in a line",
      "a\0b\r\n.\r\n",
    ]]
  ) {
    test(`${name} is flagged, and only the real end ends the data`, () => {
      const d = new DataDecoder();
      const r = d.feed(Buffer.from(data!, "latin1"));
      expect(r.done).toBe(true);
      expect(r.rest.length).toBe(0);
      expect(d.nul).toBe(true);
    });
  }
  test("clean data is not flagged", () => {
    const d = new DataDecoder();
    d.feed(Buffer.from("a\r\nb\r\n.\r\n"));
    expect(d.nul).toBe(false);
  });
});
