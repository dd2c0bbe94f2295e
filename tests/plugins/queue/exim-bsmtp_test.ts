/**
 * queue/exim-bsmtp against a real Exim: Debian's exim4 binary, unpacked from its .deb (it
 * conflicts with the Postfix the other tests use), run with its own config (tests/helpers/exim.ts).
 * Shell scripts stand in for an Exim that hangs, dies mid-message or answers a 4xx: fault
 * injection that the real one cannot be made to do on demand.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { FakeClock, TestSession } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { type Exim, eximUsable, startExim } from "../../helpers/exim.ts";
import { script } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

async function send(plugin: string, message = "Subject: hi\n\nhello\n", from = "<s@example.net>") {
  const t = await TestSession.start({ plugins: [plugin] });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${from}`);
  await t.command("RCPT TO:<a@example.org>");
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  return { r: await t.data(message), t };
}

const lines = (t: TestSession) => t.logs.filter((l) => l.plugin === "queue::exim_2dbsmtp").map((l) => l.message);

// Entering a mount namespace (for Exim's Debian-exim user) needs root.
(eximUsable ? describe : describe.skip)("queue/exim-bsmtp with Debian's Exim", () => {
  let exim: Exim;
  beforeAll(() => {
    exim = startExim();
  });
  afterAll(() => exim?.remove());
  const plugin = () => `queue/exim-bsmtp exim_path ${exim.path}`;

  test("the batch is queued: 250, each recipient gets the message with the envelope sender", async () => {
    const { r } = await send(plugin(), "Subject: bsmtp\n\n.dot first\nb\xe4d 8-bit\n");
    expect(r.code).toBe(250);
    expect(r.text).toBe("Queued!");
    const got = exim.messages().filter((m) => m.includes("Subject: bsmtp"));
    expect(got.map((m) => /^Envelope-to: (.*)$/m.exec(m)?.[1]).sort()).toEqual(["a@example.org", "b@example.org"]);
    for (const m of got) {
      expect(m).toContain("Return-path: <s@example.net>");
      expect(m).toContain("\n.dot first\nb\xe4d 8-bit\n");
    }
    expect(exim.log()).toContain("<= s@example.net");
  });

  test("the null sender stays null", async () => {
    expect((await send(plugin(), "Subject: bounce\n\nx\n", "<>")).r.code).toBe(250);
    expect(exim.messages().find((m) => m.includes("Subject: bounce"))).toContain("Return-path: <>");
  });

  test("Exim refuses (acl_not_smtp): its 550 kept as 552 with its text, nothing delivered", async () => {
    const { r, t } = await send(plugin(), "Subject: reject me\n\nx\n");
    expect(r.code).toBe(552);
    expect(r.text).toBe("content refused by policy");
    expect(exim.messages().some((m) => m.includes("Subject: reject me"))).toBe(false);
    expect(lines(t).some((l) => l.includes("Error detected in line"))).toBe(true);
  });

  test("Exim failing without a reply (no spool space): 451, nothing delivered", async () => {
    exim.configure({ main: "check_spool_space = 100000G" });
    try {
      const { r, t } = await send(plugin(), "Subject: no space\n\nx\n");
      expect(r.code).toBe(451);
      expect(lines(t).some((l) => l.includes("insufficient disk space"))).toBe(true);
      expect(exim.messages().some((m) => m.includes("Subject: no space"))).toBe(false);
    } finally {
      exim.configure({});
    }
  });

  test("check() is quiet for a runnable Exim", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plugin()] }))).toEqual([]);
  });
});

describe("queue/exim-bsmtp failure modes", () => {
  test("Exim missing: 451, and check() says so", async () => {
    expect((await send("queue/exim-bsmtp exim_path /nonexistent/exim")).r.code).toBe(451);
    const warnings = await pluginChecks(await testRegistry({ plugins: ["queue/exim-bsmtp exim_path /nonexistent/exim"] }));
    expect(warnings[0]).toContain("cannot be run");
  });

  test("a 4xx reply is kept temporary: 452 with Exim's text", async () => {
    const fake = script(
      'cat >/dev/null; printf "451 Temporary local problem\\nTransaction started in line 1\\nError detected in line 6\\n"; exit 1',
    );
    const { r } = await send(`queue/exim-bsmtp exim_path ${fake}`);
    expect(r.code).toBe(452);
    expect(r.text).toBe("Temporary local problem");
  });

  test("an Exim that hangs is killed at exim_timeout: 451", async () => {
    const { r, t } = await send(`queue/exim-bsmtp exim_path ${script("exec sleep 1000")} exim_timeout 0.3`);
    expect(r.code).toBe(451);
    expect(lines(t).some((l) => l.includes("SIGKILL"))).toBe(true);
  });

  test("an Exim that hangs is killed at the plugin's time limit too (session clock): 451", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: [`queue/exim-bsmtp exim_path ${script("exec sleep 1000")} timeout 5`] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<s@example.net>");
    await t.command("RCPT TO:<a@example.org>");
    await t.command("DATA");
    const pending = t.data("Subject: x\n\ny\n");
    await new Promise((r) => setTimeout(r, 100)); // the program is running
    await clock.advance(5_000);
    expect((await pending).code).toBe(451);
    while (!lines(t).some((l) => l.includes("SIGKILL"))) await new Promise((r) => setTimeout(r, 10));
  });

  test("an Exim that dies mid-message: 451, even one that exits 0", async () => {
    const big = `Subject: big\n\n${"z".repeat(999)}\n`.repeat(300);
    for (const code of [1, 0]) {
      const { r } = await send(`queue/exim-bsmtp exim_path ${script(`head -c 100 >/dev/null; exit ${code}`)}`, big);
      expect(r.code).toBe(451);
    }
  });

  test("bad arguments stop start-up", async () => {
    for (
      const line of [
        "queue/exim-bsmtp exim_path relative",
        "queue/exim-bsmtp exim_pth /x",
        "queue/exim-bsmtp exim_timeout 0",
        "queue/exim-bsmtp /usr/sbin/rsmtp",
      ]
    ) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("queue/exim-bsmtp: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("queue/exim-bsmtp exim_path /usr/sbin/rsmtp exim_timout 5", "exim_timout");
  });
});
