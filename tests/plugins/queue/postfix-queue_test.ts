/**
 * queue/postfix-queue against a real Postfix 3.7 (Debian's postfix) run privately
 * (tests/helpers/postfix.ts): the cleanup protocol on its unix socket, the envelope and content
 * as Postfix queued them (postqueue, postcat), cleanup's refusals (header_checks REJECT, size,
 * a milter that is down with tempfail), the flags, and the failure modes (no socket, silent,
 * hanging up mid-message: fault-injecting fake peers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OK, type PluginModule } from "qpsmtpd";
import { FakeClock, TestSession, type TestSessionOptions } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { sharedTempDir } from "../../helpers/daemons.ts";
import { fakePeer } from "../../helpers/fake_peers.ts";
import { type Postfix, postfixUsable, startPostfix } from "../../helpers/postfix.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

async function send(plugin: string, message: string, opts: Partial<TestSessionOptions> & { from?: string } = {}) {
  const t = await TestSession.start({ plugins: [plugin, ...Object.keys(opts.modules ?? {})], ...opts });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${opts.from ?? "<s@example.net>"}`);
  await t.command("RCPT TO:<a@example.org>");
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  return { r: await t.data(message), t };
}

const queueId = (text: string): string => /Queue-Id: (\w+)/.exec(text)?.[1] ?? "";
const lines = (t: TestSession) => t.logs.filter((l) => l.plugin === "queue::postfix_2dqueue").map((l) => l.message);

(postfixUsable ? describe : describe.skip)("queue/postfix-queue with Postfix", () => {
  let postfix: Postfix;
  let maps = "";
  beforeAll(async () => {
    const dir = (maps = sharedTempDir("postfix-maps-"));
    writeFileSync(join(dir, "header_checks"), "/^Subject: reject/ REJECT 5.7.1 no thanks\n");
    postfix = await startPostfix(
      [
        `header_checks = regexp:${dir}/header_checks`,
        "message_size_limit = 200000",
        // FLAG_MILTER with this milter down: cleanup defers (a temporary refusal).
        `non_smtpd_milters = unix:${dir}/no-milter.sock`,
        "milter_default_action = tempfail",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await postfix?.stop();
    rmSync(maps, { recursive: true, force: true });
  });

  const plugin = (flags = "") => `queue/postfix-queue ${postfix.cleanupSocket} ${flags}`.trim();

  test("cleanup queues it: 250 with the queue id; envelope and content as sent, long lines and 8-bit intact", async () => {
    const long = "L".repeat(3000);
    const { r } = await send(plugin(), `Subject: via cleanup\nMessage-Id: <pq1@example.net>\n\n.dot\n${long}\nb\xe4d\n`);
    expect(r.code).toBe(250);
    expect(r.text).toMatch(/^Queued! <pq1@example\.net> \(Queue-Id: \w+\)$/);
    const id = queueId(r.text);
    const queued = (await postfix.queue()).find((q) => q.queue_id === id);
    expect(queued).toEqual({
      queue_name: queued!.queue_name,
      queue_id: id,
      sender: "s@example.net",
      recipients: ["a@example.org", "b@example.org"],
    });
    expect(["incoming", "active", "deferred"]).toContain(queued!.queue_name);
    const content = await postfix.content(id);
    expect(content).toContain("Subject: via cleanup");
    expect(content).toMatch(/^Received: from /m);
    expect(content).toContain(`\n.dot\n${long}\n`);
    expect(content).toContain("\nb\xe4d\n");
  });

  test("the null sender and the cleanup_sockets list (first dead, then Postfix)", async () => {
    const config = { cleanup_sockets: [`${postfix.dir}/none`, postfix.cleanupSocket] };
    const { r } = await send("queue/postfix-queue", "Subject: bounce\n\nx\n", { from: "<>", config });
    expect(r.code).toBe(250);
    expect(await postfix.envelope(queueId(r.text))).toMatch(/^sender: $/m);
  });

  test("FLAG_FILTER and header_checks REJECT: 552 with Postfix's reason, nothing queued", async () => {
    const before = (await postfix.queue()).length;
    const { r } = await send(plugin("FLAG_FILTER"), "Subject: reject me\n\nx\n");
    expect(r.code).toBe(552);
    expect(r.text).toContain("no thanks");
    expect((await postfix.queue()).length).toBe(before);
    // Without the flag cleanup runs no header checks: queued.
    expect((await send(plugin(), "Subject: reject me\n\nx\n")).r.code).toBe(250);
  });

  test("too big for message_size_limit: 552 5.3.4", async () => {
    const { r } = await send(plugin(), `Subject: big\n\n${"x".repeat(999)}\n`.repeat(300));
    expect(r.code).toBe(552);
    expect(r.lines).toEqual(["5.3.4 message file too big"]);
  });

  test("FLAG_MILTER with the milter down (tempfail): 452, the sender retries", async () => {
    const { r, t } = await send(plugin("FLAG_MASK_EXTERNAL"), "Subject: milter\n\nx\n");
    expect(r.code).toBe(452);
    expect(r.lines).toEqual(["4.7.1 Service unavailable - try again later"]);
    expect(lines(t).some((l) => l.includes("status 256"))).toBe(true);
  });

  test("an earlier plugin's postfix-queue-flags note is added: FLAG_HOLD puts it on hold", async () => {
    const hold: PluginModule = { hook_queue_pre: (txn) => void txn.notes("postfix-queue-flags", 4) }; // FLAG_HOLD
    const { r } = await send(plugin(), "Subject: hold\n\nx\n", { modules: { hold } });
    expect(r.code).toBe(250);
    expect((await postfix.queue()).find((q) => q.queue_id === queueId(r.text))?.queue_name).toBe("hold");
  });

  test("check() is quiet when cleanup answers", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plugin()] }))).toEqual([]);
  });
});

describe("queue/postfix-queue failure modes", () => {
  const dir = sharedTempDir("pfq-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("no cleanup socket: 451, and check() warns", async () => {
    const { r, t } = await send(`queue/postfix-queue ${dir}/nothing-here`, "Subject: x\n\ny\n");
    expect(r.code).toBe(451);
    expect(lines(t).some((l) => l.includes("stays with the sender"))).toBe(true);
    const warnings = await pluginChecks(await testRegistry({ plugins: [`queue/postfix-queue ${dir}/nothing-here`] }));
    expect(warnings[0]).toContain("does not answer");
  });

  test("a socket that accepts and never answers: 451 at the plugin's time limit (session clock), the connection dropped", async () => {
    const peer = await fakePeer(undefined, join(dir, "silent.sock"));
    try {
      const clock = new FakeClock();
      const t = await TestSession.start({ clock, plugins: [`queue/postfix-queue ${dir}/silent.sock timeout 5`] });
      t.mockHook("rcpt", () => OK);
      await t.command("EHLO c");
      await t.command("MAIL FROM:<s@example.net>");
      await t.command("RCPT TO:<a@example.org>");
      await t.command("DATA");
      const pending = t.data("Subject: x\n\ny\n");
      while (peer.accepted === 0) await new Promise((r) => setTimeout(r, 10));
      await clock.advance(5_000);
      expect((await pending).code).toBe(451);
      while (peer.closed === 0) await new Promise((r) => setTimeout(r, 10));
    } finally {
      await peer.close();
    }
  });

  test("postfix_timeout bounds each answer: 451", async () => {
    const peer = await fakePeer(undefined, join(dir, "silent2.sock"));
    try {
      const { r, t } = await send(`queue/postfix-queue ${dir}/silent2.sock postfix_timeout 0.3`, "Subject: x\n\ny\n");
      expect(r.code).toBe(451);
      expect(lines(t).some((l) => l.includes("timed out"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("cleanup hanging up mid-message, or answering garbage: 451, never 250", async () => {
    const hangUp = await fakePeer((s) => {
      s.write("protocol\0cleanup_protocol\0queue_id\0ABC123\0\0");
      s.once("data", () => s.destroy());
    }, join(dir, "hangup.sock"));
    const garbage = await fakePeer((s) => {
      s.write("protocol\0cleanup_protocol\0queue_id\0ABC123\0\0");
      s.on("data", (d: Buffer) => d.includes(Buffer.from("E\0")) && s.write("status\0zero\0\0"));
    }, join(dir, "garbage.sock"));
    try {
      expect((await send(`queue/postfix-queue ${dir}/hangup.sock`, `Subject: x\n\n${"y".repeat(500)}\n`.repeat(500))).r.code).toBe(451);
      expect((await send(`queue/postfix-queue ${dir}/garbage.sock`, "Subject: x\n\ny\n")).r.code).toBe(451);
    } finally {
      await hangUp.close();
      await garbage.close();
    }
  });

  test("bad arguments stop start-up", async () => {
    for (
      const line of [
        "queue/postfix-queue /s FLAG_NOPE",
        "queue/postfix-queue relative",
        "queue/postfix-queue /s postfix_timeout",
        "queue/postfix-queue /s bogus 1",
      ]
    ) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("queue/postfix-queue: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word; a misspelt flag is named as a flag", async () => {
    await expectUnknownArgument("queue/postfix-queue /var/spool/postfix/public/cleanup postfix_timout 5", "postfix_timout");
    await expect(TestSession.start({ plugins: ["queue/postfix-queue /s FLAG_MASK_EXTERNL"] })).rejects.toThrow(
      "(override plugins):1: plugin queue/postfix-queue failed to load: queue/postfix-queue: unknown cleanup flag FLAG_MASK_EXTERNL",
    );
  });
});
