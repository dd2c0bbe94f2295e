/**
 * queue/qmail-queue against a stand-in (tests/helpers/qmail_queue.ts): Debian 12 has no qmail
 * and no qmail source can be had here, so the peer is a small program that follows
 * qmail-queue(8): message on descriptor 0, envelope on descriptor 1, the verdict in the exit
 * code. The tests check the bytes it receives and the reply for each documented exit code, a
 * program that hangs, crashes, or stops reading mid-message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { FakeClock, TestSession, type TestSessionOptions } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { type QmailQueue, qmailQueueStandIn } from "../../helpers/qmail_queue.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

let qq: QmailQueue;
beforeAll(() => {
  qq = qmailQueueStandIn();
});
afterAll(() => qq?.remove());

async function send(
  plugin: string,
  message = "Subject: qq\nMessage-Id: <m1@example.net>\n\nhello\n",
  from = "<s@example.net>",
  opts: Partial<TestSessionOptions> = {},
) {
  const t = await TestSession.start({ plugins: [plugin], ...opts });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${from}`);
  await t.command("RCPT TO:<a@example.org>");
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  return { r: await t.data(message), t };
}

const plugin = () => `queue/qmail-queue ${qq.path}`;
const lines = (t: TestSession) => t.logs.filter((l) => l.plugin === "queue::qmail_2dqueue").map((l) => l.message);

describe("queue/qmail-queue", () => {
  test("the message on fd 0, the envelope on fd 1; exit 0 → 250 Queued! with the Message-Id", async () => {
    qq.mode("ok");
    const before = qq.queued().length;
    const { r } = await send(plugin(), "Subject: qq\nMessage-Id: <m1@example.net>\n\n.dot\nhello\n");
    expect(r.code).toBe(250);
    expect(r.text).toMatch(/^Queued! \d+ qp \d+ <m1@example\.net>$/);
    const [q] = qq.queued().slice(before);
    expect(q!.envelope).toBe("Fs@example.net\0Ta@example.org\0Tb@example.org\0\0");
    expect(q!.message).toMatch(/^Received: from /m);
    expect(q!.message).toContain("Subject: qq\nMessage-Id: <m1@example.net>\n\n.dot\nhello\n");
    expect(q!.message).not.toContain("\r");
  });

  test("the null sender is an empty F record", async () => {
    qq.mode("ok");
    const before = qq.queued().length;
    expect((await send(plugin(), undefined, "<>")).r.code).toBe(250);
    expect(qq.queued()[before]!.envelope).toBe("F\0Ta@example.org\0Tb@example.org\0\0");
  });

  test("a 1 MB message is streamed through whole", async () => {
    qq.mode("ok");
    const before = qq.queued().length;
    const body = "x".repeat(99) + "\n";
    expect((await send(plugin(), `Subject: big\n\n${body.repeat(10_000)}`)).r.code).toBe(250);
    expect(qq.queued()[before]!.message.endsWith(body.repeat(10_000))).toBe(true);
  });

  test("exit codes 11-40 are permanent (552), 51-81 temporary (452), with qmail's texts", async () => {
    const cases: Array<[string, number, string]> = [
      ["11", 552, "envelope address too long"],
      ["31", 552, "permanently rejected"],
      ["53", 452, "write error or disk full"],
      ["71", 452, "temporarily rejected"],
      ["81", 452, "internal bug"],
    ];
    for (const [mode, code, text] of cases) {
      qq.mode(mode);
      const before = qq.queued().length;
      const { r } = await send(plugin());
      expect(r.code).toBe(code);
      expect(r.text).toContain(text);
      expect(qq.queued().length).toBe(before);
    }
  });

  test("other failures (91, a crash, a missing program) → 451: the sender keeps the message", async () => {
    for (const mode of ["91", "crash"]) {
      qq.mode(mode);
      const { r, t } = await send(plugin());
      expect(r.code).toBe(451);
      expect(lines(t).some((l) => l.includes("stays with the sender"))).toBe(true);
    }
    expect((await send(`queue/qmail-queue ${qq.path}-missing`)).r.code).toBe(451);
  });

  test("a program that stops reading mid-message: 451 even if it claims success (exit 0), 452 for its own 54", async () => {
    const big = `Subject: big\n\n${"y".repeat(999)}\n`.repeat(300);
    qq.mode("early 0");
    const claimed = await send(plugin(), big);
    expect(claimed.r.code).toBe(451);
    expect(lines(claimed.t).some((l) => l.includes("stopped reading"))).toBe(true);
    qq.mode("early 54");
    expect((await send(plugin(), big)).r.code).toBe(452);
  });

  test("a program that never finishes is killed at qmail_timeout: 451", async () => {
    qq.mode("hang");
    const { r, t } = await send(`${plugin()} qmail_timeout 0.3`);
    expect(r.code).toBe(451);
    expect(lines(t).some((l) => l.includes("SIGKILL"))).toBe(true);
  });

  test("the plugin's time limit (on the session clock) kills it too: 451", async () => {
    qq.mode("hang");
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: [`${plugin()} timeout 5`] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<s@example.net>");
    await t.command("RCPT TO:<a@example.org>");
    await t.command("DATA");
    const pending = t.data("Subject: x\n\ny\n");
    await new Promise((r) => setTimeout(r, 100)); // the program is running
    await clock.advance(5_000);
    expect((await pending).code).toBe(451);
    // The abort killed the program: its late failure is logged, nothing is left running.
    while (!lines(t).some((l) => l.includes("SIGKILL"))) await new Promise((r) => setTimeout(r, 10));
  });

  test("QMAILQUEUE overrides the path, as in qpsmtpd", async () => {
    qq.mode("ok");
    const saved = process.env["QMAILQUEUE"];
    process.env["QMAILQUEUE"] = qq.path;
    try {
      expect((await send("queue/qmail-queue /nonexistent/qmail-queue")).r.code).toBe(250);
    } finally {
      if (saved === undefined) delete process.env["QMAILQUEUE"];
      else process.env["QMAILQUEUE"] = saved;
    }
  });

  test("check() warns when the program cannot be run; bad arguments stop start-up", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plugin()] }))).toEqual([]);
    const missing = await pluginChecks(await testRegistry({ plugins: ["queue/qmail-queue /nonexistent/qmail-queue"] }));
    expect(missing[0]).toContain("cannot be run");
    for (const line of ["queue/qmail-queue relative/path", "queue/qmail-queue /p qmail_timeout x", "queue/qmail-queue /p bogus 1"]) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("queue/qmail-queue: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word (not the path)", async () => {
    await expectUnknownArgument("queue/qmail-queue /var/qmail/bin/qmail-queue qmail_timout 5", "qmail_timout");
    await expectUnknownArgument("queue/qmail-queue qmail_timout 5", "qmail_timout");
  });
});
