/**
 * greylisting, on the SQLite store. The plugin and the store read the server's clock, so the
 * tests move a FakeClock past the black, grey and white timeouts instead of waiting.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, OK } from "qpsmtpd";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpdb-"));
let clock = new FakeClock();
beforeEach(() => {
  clock = new FakeClock();
});

describe("greylisting", () => {
  async function attempt(args: string, ip = "192.0.2.7", to = "<b@example.org>"): Promise<{ mail: number; rcpt: number; t: TestSession }> {
    const t = await TestSession.start({
      clock,
      plugins: [`greylisting ${args}`, "rcpt_ok"],
      remoteIp: ip,
      config: { rcpthosts: "example.org" },
    });
    await t.command("EHLO c");
    const mail = (await t.command("MAIL FROM:<a@example.net>")).code;
    const rcpt = mail === 250 ? (await t.command(`RCPT TO:${to}`)).code : 0;
    return { mail, rcpt, t };
  }

  test("by address: first try deferred, too-early retry deferred, later retry passes and is remembered", async () => {
    const args = `db_dir ${dbDir()} black_timeout 1`;
    const first = await attempt(args);
    expect(first.mail).toBe(450);
    expect(first.t.replies.at(-1)!.text).toBe("This mail is temporarily denied");
    expect((await attempt(args)).mail).toBe(450);
    await clock.advance(1100);
    const later = await attempt(args);
    expect(later.mail).toBe(250);
    expect(later.t.transaction.notes("greylist")).toBe("pass");
    const again = await attempt(args);
    expect(again.mail).toBe(250);
    expect(again.t.transaction.notes("greylist")).toBe("white");
    expect((await attempt(args, "192.0.2.8")).mail).toBe(450);
  });

  test("per recipient with recipient 1; deny_late defers at DATA; reject 0 only notes", async () => {
    const dir = dbDir();
    const r = await attempt(`db_dir ${dir} recipient 1`);
    expect([r.mail, r.rcpt]).toEqual([250, 450]);
    expect(r.t.replies.at(-1)!.text).toBe("This mail is temporarily denied");
    const late = await TestSession.start({ plugins: [`greylisting db_dir ${dbDir()} recipient 1 deny_late 1`], remoteIp: "192.0.2.9" });
    late.mockHook("rcpt", (txn) => (txn.notes("greylist") ? OK : DECLINED));
    await late.command("EHLO c");
    await late.command("MAIL FROM:<a@example.net>");
    await late.command("RCPT TO:<x@example.org>");
    await late.command("RCPT TO:<y@example.org>");
    expect((await late.command("DATA")).code).toBe(451);
    const test0 = await attempt(`db_dir ${dbDir()} reject 0`);
    expect(test0.mail).toBe(250);
    expect(test0.t.transaction.notes("greylist")).toBe("new");
  });

  test("relay clients are exempt; denysoft_greylist sets the text", async () => {
    const t = await TestSession.start({
      plugins: ["relay", `greylisting db_dir ${dbDir()}`],
      config: { relayclients: "127.0.0.1", denysoft_greylist: "come back later" },
    });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const u = await TestSession.start({
      plugins: [`greylisting db_dir ${dbDir()}`],
      config: { denysoft_greylist: "come back later" },
      remoteIp: "192.0.2.1",
    });
    await u.command("EHLO c");
    expect((await u.command("MAIL FROM:<a@example.net>")).text).toBe("come back later");
  });
});

describe("greylisting arguments", () => {
  const attempt = async (args: string, from = "<a@example.net>", ip = "192.0.2.60") => {
    const t = await TestSession.start({
      clock,
      plugins: [`greylisting ${args}`, "rcpt_ok"],
      remoteIp: ip,
      config: { rcpthosts: "example.org" },
    });
    await t.command("EHLO c");
    await t.command(`MAIL FROM:${from}`);
    return (await t.command("RCPT TO:<b@example.org>")).code;
  };
  test("sender 1 keys on the sender; remote_ip 0 ignores the address", async () => {
    const a = `db_dir ${dbDir()} sender 1 black_timeout 0`;
    expect(await attempt(a)).toBe(450);
    expect(await attempt(a)).toBe(250);
    expect(await attempt(a, "<other@example.net>")).toBe(450);
    const b = `db_dir ${dbDir()} sender 1 remote_ip 0 black_timeout 0`;
    expect(await attempt(b, "<a@example.net>", "192.0.2.61")).toBe(450);
    expect(await attempt(b, "<a@example.net>", "192.0.2.62")).toBe(250);
  });
  test("grey_timeout forgets an unanswered first try; white_timeout forgets a passed sender", async () => {
    const g = `db_dir ${dbDir()} recipient 1 black_timeout 0 grey_timeout 1`;
    expect(await attempt(g)).toBe(450);
    await clock.advance(1100);
    expect(await attempt(g)).toBe(450); // the first try was forgotten: this is a new first try
    const w = `db_dir ${dbDir()} recipient 1 black_timeout 0 white_timeout 1`;
    expect(await attempt(w)).toBe(450);
    expect(await attempt(w)).toBe(250);
    await clock.advance(1100);
    expect(await attempt(w)).toBe(450);
  });
});
