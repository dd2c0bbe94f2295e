/** content_log: mbox archive of every message, when enabled. */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("content_log", () => {
  test("archives messages in mbox form when enabled", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpcl-"));
    const t = await TestSession.start({
      plugins: ["content_log"],
      config: { content_log_enabled: "1", content_log_file: `${dir}/%Y/archive` },
    });
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    await t.data("Subject: archived\n\nFrom the start\nbody\n");
    const file = join(dir, String(new Date().getFullYear()), "archive");
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^From a@example\.net \w{3}, /);
    expect(text).toContain("Subject: archived\n\n>From the start\nbody\n\n");
    const off = await TestSession.start({ plugins: ["content_log"], config: { content_log_file: `${dir}/off` } });
    off.mockHook("rcpt", () => OK);
    off.mockHook("queue", () => OK);
    await off.command("HELO c");
    await off.command("MAIL FROM:<a@example.net>");
    await off.command("RCPT TO:<b@example.org>");
    await off.command("DATA");
    await off.data("Subject: x\n\ny\n");
    expect(existsSync(join(dir, "off"))).toBe(false);
  });
});

describe("content_log arguments", () => {
  test("it takes none (its settings are config files): a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("content_log content_log_enabled 1", "content_log_enabled");
  });
});
