import { describe, expect, test } from "bun:test";
import { formatReply, splitLines } from "../../src/smtp/reply.ts";

describe("splitLines", () => {
  test("one clean line per element stays as it is", () => {
    expect(splitLines(["relaying denied", "", "see https://example.com/why?a=1"])).toEqual([
      "relaying denied",
      "",
      "see https://example.com/why?a=1",
    ]);
  });

  test("splits on LF and drops the CRs and NULs a plugin put in, as qpsmtpd does", () => {
    expect(splitLines(["first\r\nsecond", "a\0b\r", "x\n\ny"])).toEqual(["first", "second", "ab", "x", "", "y"]);
  });

  test("numbers become text; `from` skips the elements before it (a plugin's return code)", () => {
    expect(splitLines([901, "no", 42], 1)).toEqual(["no", "42"]);
    expect(splitLines([901], 1)).toEqual([]);
  });

  test("a CR or NUL anywhere takes the careful path", () => {
    for (const at of [0, 5, 11]) {
      const line = "abcdefghijk".slice(0, at) + "\r" + "abcdefghijk".slice(at);
      expect(splitLines([line])).toEqual(["abcdefghijk"]);
    }
  });
});

describe("formatReply", () => {
  test("every line but the last with a hyphen", () => {
    expect(formatReply(250, ["one", "two", "three"])).toBe("250-one\r\n250-two\r\n250 three\r\n");
    expect(formatReply(550, [])).toBe("550 \r\n");
  });
});
