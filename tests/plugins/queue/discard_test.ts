/** queue/discard: accepts every message and throws it away, with warnings. */
import { describe, expect, test } from "bun:test";
import { LOGINFO, LOGWARN, OK } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { captureStderr } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("queue/discard", () => {
  test("every message is answered 250 Queued (discarded), and the drop is logged", async () => {
    const t = await TestSession.start({ plugins: ["queue/discard"] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("RCPT TO:<c@example.org>");
    await t.command("DATA");
    const r = await t.data("Subject: gone\n\nbody\n");
    expect([r.code, r.text]).toEqual([250, "Queued (discarded)"]);
    const drops = t.logs.filter((l) => l.hook === "queue" && l.message.startsWith("DISCARDED"));
    expect(drops.length).toBe(1);
    expect(drops[0]!.level).toBe(LOGINFO);
    expect(drops[0]!.message).toMatch(/^DISCARDED message from <a@example\.net> to 2 recipient\(s\), [1-9]\d* bytes$/);
  });

  test("warns at start-up that accepted mail is thrown away", async () => {
    const out = await captureStderr(async () => void (await TestSession.start({ plugins: ["queue/discard"], logLevel: LOGWARN })));
    expect(out).toContain("queue/discard is loaded: every accepted message will be THROWN AWAY");
  });

  test("warns again every 1000 messages", async () => {
    const t = await TestSession.start({ plugins: ["queue/discard"] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    const warned = () => t.logs.filter((l) => l.level === LOGWARN && / messages DISCARDED so far$/.test(l.message));
    // The count is the plugin's own, over every connection: at most 1000 more messages reach the next warning.
    let sent = 0;
    while (warned().length === 0 && sent < 1000) {
      expect((await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")).at(-1)!.code).toBe(354);
      expect((await t.data("Subject: x\n\ny\n")).code).toBe(250);
      sent++;
    }
    expect(warned().length).toBe(1);
    expect(warned()[0]!.message).toMatch(/^[1-9]\d*000 messages DISCARDED so far$/);
  }, 30000);
});

describe("queue/discard arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("queue/discard now", "now");
  });
});
