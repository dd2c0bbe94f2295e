import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

describe("count_unrecognized_commands", () => {
  test("disconnects at the limit with 521", async () => {
    const t = await TestSession.start({ plugins: ["count_unrecognized_commands 3"] });
    const r = await t.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([500, 500, 521]);
    expect(r[2]!.text).toBe("Closing connection, 3 unrecognized commands.  Perhaps you should read RFC 2821?");
    expect(t.closed).toBe(true);
  });
  test("defaults to 4", async () => {
    const t = await TestSession.start({ plugins: ["count_unrecognized_commands"] });
    const r = await t.send("A1\r\nA2\r\nA3\r\nA4\r\n");
    expect(r.map((x) => x.code)).toEqual([500, 500, 500, 521]);
  });
});

describe("dont_require_anglebrackets", () => {
  test("adds the brackets, then the address is parsed as usual", async () => {
    const t = await TestSession.start({ plugins: ["dont_require_anglebrackets"] });
    t.mockHook("rcpt", () => OK);
    await t.command("HELO c");
    expect((await t.command("MAIL FROM:a@example.net")).text).toBe("<a@example.net>, sender OK - how exciting to get mail from you!");
    expect((await t.command("RCPT TO:b@example.org")).code).toBe(250);
    expect((await t.command("RCPT TO:not an address")).code).toBe(501);
  });
});

describe("auth/authdeny", () => {
  test("registers the generic auth hook, so all mechanisms are offered, and declines", async () => {
    const t = await TestSession.start({ plugins: ["auth/authdeny"] });
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN CRAM-MD5");
    expect((await t.command(`AUTH PLAIN ${Buffer.from("\0u@x.example\0p").toString("base64")}`)).code).toBe(535);
  });
});

describe("logging/warn", () => {
  test("writes lines at or below its level to stderr, with the connection id", async () => {
    const written: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (written.push(String(s)), true)) as typeof process.stderr.write;
    try {
      const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { logging: "logging/warn LOGINFO", rcpthosts: "example.org" } });
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
    } finally {
      process.stderr.write = orig;
    }
    expect(written.some((l) => / test \(rcpt\) rcpt_ok: fail, evil\.test is not a local domain\n$/.test(l))).toBe(true);
    expect(written.some((l) => l.includes("LOGDEBUG") || / \(rcpt\) rcpt_ok: DENY/.test(l))).toBe(false);
  });
});
