import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Address } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { STALE_TMP_MS, subdirFor } from "../../../plugins/queue/maildir.ts";
import { FakeClock } from "../../../src/testing/fake_clock.ts";
import { OK } from "qpsmtpd";

async function deliver(args: string, rcpts: string[], message = "Subject: m\nMessage-Id: <id1@example.net>\n\nbody\n") {
  const t = await TestSession.start({ plugins: [`queue/maildir ${args}`] });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  await t.command("MAIL FROM:<sender@example.net>");
  for (const r of rcpts) await t.command(`RCPT TO:${r}`);
  await t.command("DATA");
  return t.data(message);
}

const files = (dir: string): string[] => readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8"));

describe("queue/maildir", () => {
  test("one copy in the Maildir with Return-Path and Delivered-To (qpsmtpd's order: the last recipient first); 250 names the Message-Id", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "md-")), "Maildir");
    const r = await deliver(dir, ["<a@example.org>", "<b@example.org>"]);
    expect(r.code).toBe(250);
    expect(r.text).toBe("Queued! <id1@example.net>");
    const [msg, ...more] = files(join(dir, "new"));
    expect(more).toEqual([]);
    expect(msg).toStartWith(
      "Return-Path: <sender@example.net>\nDelivered-To: b@example.org\nDelivered-To: a@example.org\nAuthentication-Results: ",
    );
    expect(msg).toEndWith("Subject: m\nMessage-Id: <id1@example.net>\n\nbody\n");
    expect(readdirSync(join(dir, "tmp"))).toEqual([]);
    expect(existsSync(join(dir, "cur"))).toBe(true);
  });

  test("a message of several MB, spooled to disk, arrives byte for byte (written in batches)", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "md-")), "Maildir");
    const lines = Array.from({ length: 60_000 }, (_, i) => `line ${i} ${"x".repeat(i % 97)}`);
    const message = `Subject: big\nMessage-Id: <big@example.net>\n\n${lines.join("\n")}\n`;
    const r = await deliver(dir, ["<a@example.org>"], message);
    expect(r.code).toBe(250);
    const [msg] = files(join(dir, "new"));
    expect(msg!.length).toBeGreaterThan(3_000_000);
    expect(msg).toStartWith("Return-Path: <sender@example.net>\nDelivered-To: a@example.org\n");
    expect(msg).toEndWith(message);
  });

  test("a template delivers one copy per recipient into its own Maildir", async () => {
    const root = mkdtempSync(join(tmpdir(), "md-"));
    expect((await deliver(`${root} %d/%l`, ["<a@example.org>", "<b@example.net>"])).code).toBe(250);
    expect(files(join(root, "example.org/a/new"))[0]).toContain("Delivered-To: a@example.org\n");
    expect(files(join(root, "example.net/b/new"))[0]).toContain("Delivered-To: b@example.net\n");
  });

  test("an address cannot climb out of the root", () => {
    expect(subdirFor("%d/%l", Address.parse('<"../../etc"@example.org>')!)).toBe("example.org/_._.._etc");
    expect(subdirFor("%l", new Address("..", "example.org"))).toBe("_.");
    expect(subdirFor("%u", new Address("a/b", "example.org"))).toBe("a_b@example.org");
  });

  test("a failed write answers 451 and leaves nothing in new/", async () => {
    const root = mkdtempSync(join(tmpdir(), "md-"));
    const t = await TestSession.start({ plugins: [`queue/maildir ${root}/Maildir`] });
    t.mockHook("rcpt", () => OK);
    // tmp/ is a file: the write fails whoever we run as.
    mkdirSync(join(root, "Maildir", "new"), { recursive: true });
    writeFileSync(join(root, "Maildir", "tmp"), "");
    await t.command("EHLO c");
    await t.command("MAIL FROM:<s@example.net>");
    await t.command("RCPT TO:<a@example.org>");
    await t.command("DATA");
    const r = await t.data("Subject: x\n\ny\n");
    expect(r.code).toBe(451);
    expect(readdirSync(join(root, "Maildir", "new"))).toEqual([]);
  });

  test("bad arguments stop the load", async () => {
    expect(TestSession.start({ plugins: ["queue/maildir"] })).rejects.toThrow("needs the Maildir directory");
    expect(TestSession.start({ plugins: ["queue/maildir /tmp/x nosubst"] })).rejects.toThrow("has no %l, %d or %u");
    expect(TestSession.start({ plugins: ["queue/maildir /tmp/x %l 9z9"] })).rejects.toThrow("is not octal");
  });

  test("tmp/ files of deliveries that died are removed past 36 hours: at start-up, then at most hourly as mail comes", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "md-")), "Maildir");
    for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(dir, sub), { recursive: true });
    const clock = new FakeClock(Date.now());
    const at = (name: string, ageMs: number): void => {
      writeFileSync(join(dir, "tmp", name), "half a message");
      const t = (clock.now() - ageMs) / 1000;
      utimesSync(join(dir, "tmp", name), t, t);
    };
    at("old", STALE_TMP_MS + 60_000);
    at("young", STALE_TMP_MS - 3600_000);
    const t = await TestSession.start({ clock, plugins: [`queue/maildir ${dir}`], config: { timeout: "86400" } });
    expect(readdirSync(join(dir, "tmp"))).toEqual(["young"]);
    // Within the hour a delivery does not sweep; after it, the one that has become stale goes.
    t.mockHook("rcpt", () => OK);
    const send = async (): Promise<void> => {
      await t.command("MAIL FROM:<s@example.net>");
      await t.command("RCPT TO:<a@example.org>");
      await t.command("DATA");
      expect((await t.data("Subject: m\n\nbody\n")).code).toBe(250);
    };
    await t.command("EHLO c");
    await clock.advance(3000_000);
    await send();
    expect(readdirSync(join(dir, "tmp"))).toEqual(["young"]);
    await clock.advance(1200_000);
    await send();
    expect(readdirSync(join(dir, "tmp"))).toEqual([]);
    expect(t.logs.some((l) => l.message === `removed 1 stale file(s) from ${join(dir, "tmp")}`)).toBe(true);
    expect(readdirSync(join(dir, "new"))).toHaveLength(2);
  });
});
