/** badmailfrom, badrcptto, badmailfromto, rcpt_regexp. */
import { describe, expect, test } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";

async function session(opts: TestSessionOptions, ip = "192.0.2.50"): Promise<TestSession> {
  const t = await TestSession.start({ ...opts, remoteIp: ip });
  await t.command("EHLO c");
  return t;
}

describe("badmailfrom", () => {
  const config = { badmailfrom: ["# comment", "spammer@evil.test Go away", "@bad.example", "^bounce-.*@lists\\.example$ no VERP", "nonsense-without-at"] };
  test("exact address, with its reason", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    const r = await t.command("MAIL FROM:<Spammer@EVIL.test>");
    expect([r.code, r.text]).toEqual([550, "Go away"]);
    expect(t.connection.notes("karma")).toBe(-1);
  });
  test("@host matches every sender there, with the default reason", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    const r = await t.command("MAIL FROM:<anyone@bad.example>");
    expect([r.code, r.text]).toEqual([550, "Your envelope sender is in my badmailfrom list"]);
    expect((await t.command("MAIL FROM:<anyone@sub.bad.example>")).code).toBe(250);
  });
  test("regular expressions", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    expect((await t.command("MAIL FROM:<bounce-123@lists.example>")).text).toBe("no VERP");
    expect((await t.command("MAIL FROM:<x-bounce-123@lists.example>")).code).toBe(250);
  });
  test("null sender, relay clients and reject 0 pass; reject naughty defers", async () => {
    expect((await (await session({ plugins: ["badmailfrom"], config })).command("MAIL FROM:<>")).code).toBe(250);
    const relay = await session({ plugins: ["relay", "badmailfrom"], config: { ...config, relayclients: "10.0.0.0/8" } }, "10.1.1.1");
    expect((await relay.command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    expect((await (await session({ plugins: ["badmailfrom reject 0"], config })).command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    const n = await session({ plugins: ["badmailfrom reject naughty", "naughty reject rcpt"], config });
    expect((await n.command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    expect(n.connection.notes("naughty")).toBe("(badmailfrom) Go away");
    const r = await n.command("RCPT TO:<x@example.org>");
    expect([r.code, r.text]).toEqual([550, "(badmailfrom) Go away"]);
    expect(n.closed).toBe(true);
  });
});

describe("badrcptto", () => {
  const config = { badrcptto: ["bad@example.org", "@spamtrap.example", "^abuse-.*@ reason given", "/etc/passwd"] };
  test("address, host and pattern (case-insensitive)", async () => {
    const t = await session({ plugins: ["badrcptto"], config });
    t.mockHook("rcpt", () => undefined);
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<BAD@example.org>")).text).toBe("mail to bad@example.org not accepted here (#5.1.1)");
    expect((await t.command("RCPT TO:<x@spamtrap.example>")).code).toBe(550);
    expect((await t.command("RCPT TO:<Abuse-me@x.example>")).text).toBe("mail to ^abuse-.*@ not accepted here");
    expect((await t.command("RCPT TO:<good@example.org>")).code).toBe(450);
    expect(t.connection.notes("karma")).toBe(-6);
  });
});

describe("badmailfromto", () => {
  test("refuses only the listed pair", async () => {
    const t = await session({ plugins: ["badmailfromto"], config: { badmailfromto: "ex@example.net boss@example.org" } });
    await t.command("MAIL FROM:<ex@example.net>");
    expect((await t.command("RCPT TO:<boss@example.org>")).code).toBe(550);
    expect((await t.command("RCPT TO:<other@example.org>")).code).toBe(450);
    await t.command("MAIL FROM:<friend@example.net>");
    expect((await t.command("RCPT TO:<boss@example.org>")).code).toBe(450);
  });
});

describe("rcpt_regexp", () => {
  test("first matching line decides, with its code and text", async () => {
    const t = await session({ plugins: ["rcpt_regexp"], config: { rcpt_regexp: ["/^sales-/i DENY no more sales", "info@example.org OK", "/^temp/ DENYSOFT later", "/(/ DENY broken pattern"] } });
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<Sales-x@example.org>")).text).toBe("no more sales");
    expect((await t.command("RCPT TO:<info@example.org>")).code).toBe(250);
    expect((await t.command("RCPT TO:<temp1@example.org>")).code).toBe(450);
    expect((await t.command("RCPT TO:<other@example.org>")).text).toBe("No plugin decided if relaying is allowed");
  });
});
