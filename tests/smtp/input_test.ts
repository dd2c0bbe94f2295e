import { describe, expect, test } from "bun:test";
import { InputBuffer } from "../../src/smtp/input.ts";

describe("InputBuffer.readLine", () => {
  test("returns CRLF-terminated lines and waits for the rest", () => {
    const b = new InputBuffer();
    b.push(Buffer.from("EHLO a\r\nMAIL FR"));
    expect(b.readLine(512)).toEqual({ kind: "line", text: "EHLO a" });
    expect(b.readLine(512)).toEqual({ kind: "need_more" });
    b.push(Buffer.from("OM:<a@b>\r\n"));
    expect(b.readLine(512)).toEqual({ kind: "line", text: "MAIL FROM:<a@b>" });
    expect(b.size).toBe(0);
  });

  test("a bare LF is reported, never taken as a line end", () => {
    const b = new InputBuffer();
    b.push(Buffer.from("EHLO x\nQUIT\r\n"));
    expect(b.readLine(512)).toEqual({ kind: "bare_lf", text: "EHLO x" });
  });

  test("a CR inside a line stays in the line (one command, not two)", () => {
    const b = new InputBuffer();
    b.push(Buffer.from("MAIL FROM:<a@example.net>\rRCPT TO:<b@example.org>\r\n"));
    expect(b.readLine(512)).toEqual({ kind: "line", text: "MAIL FROM:<a@example.net>\rRCPT TO:<b@example.org>" });
    expect(b.readLine(512)).toEqual({ kind: "need_more" });
  });

  test("an over-long line is reported once and skipped to its end, memory bounded", () => {
    const b = new InputBuffer();
    b.push(Buffer.alloc(600, 0x61));
    expect(b.readLine(512)).toEqual({ kind: "too_long" });
    expect(b.size).toBe(0);
    for (let i = 0; i < 256; i++) {
      b.push(Buffer.alloc(65536, 0x61)); // 16 MiB without LF
      expect(b.readLine(512)).toEqual({ kind: "need_more" });
      expect(b.size).toBe(0);
    }
    b.push(Buffer.from("aaa\r\nNOOP\r\n"));
    expect(b.readLine(512)).toEqual({ kind: "line", text: "NOOP" });
  });

  test("a complete line just over the limit is too long", () => {
    const b = new InputBuffer();
    b.push(Buffer.from(`${"a".repeat(513)}\r\nNOOP\r\n`));
    expect(b.readLine(512)).toEqual({ kind: "too_long" });
    expect(b.readLine(512)).toEqual({ kind: "line", text: "NOOP" });
  });

  test("clear drops a partial line too (STARTTLS)", () => {
    const b = new InputBuffer();
    b.push(Buffer.from("RSET\r\nMAIL FROM:<attacker@evil.test> "));
    b.clear();
    b.push(Buffer.from("EHLO c\r\n"));
    expect(b.readLine(512)).toEqual({ kind: "line", text: "EHLO c" });
  });
});
