import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Address } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { subdirFor } from "../../../plugins/queue/maildir.ts";
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
});
