/**
 * qmail_deliverable against a stand-in qmail-deliverabled that follows the documented protocol
 * (the real daemon is on CPAN only): statuses, the null sender and ezmlm lists, smtproutes,
 * the daemon down, erroring and silent (on a FakeClock, through the plugin's time limit).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { freePort } from "../e2e/helpers.ts";
import { type Deliverabled, startDeliverabled } from "../helpers/qmail_deliverabled.ts";
import { expectUnknownArgument, loadWarnings } from "../helpers/plugin_args.ts";

let qd: Deliverabled;
beforeAll(async () => {
  qd = await startDeliverabled({
    "user@example.org": 0xf1,
    "list@example.org": 0x14,
    "vuser@example.org": 0xf5,
    "odd+tag@example.org": 0xf1,
    "busy@example.org": 0x22,
    "quiet@example.org": null,
  });
});
afterAll(() => qd.stop());

async function rcpt(line: string, to: string, opts: { from?: string; config?: Record<string, string | string[]> } = {}) {
  const t = await TestSession.start({ plugins: [line, "rcpt_ok"], config: { rcpthosts: ["example.org", "example.net"], ...opts.config } });
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${opts.from ?? "<a@example.net>"}`);
  return { ...(await t.command(`RCPT TO:<${to}>`)), t };
}

describe("qmail_deliverable", () => {
  test("an unknown mailbox is refused as qpsmtpd does; known ones pass", async () => {
    const line = `qmail_deliverable server 127.0.0.1:${qd.port}`;
    const nobody = await rcpt(line, "nobody@example.org");
    expect([nobody.code, nobody.text]).toEqual([550, "Sorry, no mailbox by that name. qd (#5.1.1)"]);
    expect(nobody.t.connection.notes("karma")).toBe(-1);
    expect((await rcpt(line, "user@example.org")).code).toBe(250);
    const v = await rcpt(line, "vuser@example.org");
    expect(v.code).toBe(250);
    expect(v.t.logs.some((l) => l.message === "pass, vpopmail vuser")).toBe(true);
    expect((await rcpt(line, "busy@example.org")).code).toBe(250); // temporary states pass (logged)
  });

  test("addresses go lower-cased and URI-escaped as Perl's uri_escape does", async () => {
    const line = `qmail_deliverable server 127.0.0.1:${qd.port}`;
    expect((await rcpt(line, "Odd+Tag@Example.ORG")).code).toBe(250);
    expect(qd.requests).toContain("/qd1/deliverable?odd%2Btag%40example.org");
  });

  test("an ezmlm list refuses the null sender only", async () => {
    const line = `qmail_deliverable server 127.0.0.1:${qd.port}`;
    const bounce = await rcpt(line, "list@example.org", { from: "<>" });
    expect([bounce.code, bounce.text]).toEqual([550, "mailing lists do not accept null senders"]);
    expect((await rcpt(line, "list@example.org")).code).toBe(250);
  });

  test("reject 0 only logs; relay clients are not checked", async () => {
    const logOnly = await rcpt(`qmail_deliverable server 127.0.0.1:${qd.port} reject 0`, "nobody@example.org");
    expect(logOnly.code).toBe(250);
    const t = await TestSession.start({ plugins: [`qmail_deliverable server 127.0.0.1:${qd.port}`, "rcpt_ok"] });
    t.connection.relay_client(true);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.org>");
    const before = qd.requests.length;
    expect((await t.command("RCPT TO:<nobody@elsewhere.example>")).code).toBe(250);
    expect(qd.requests.length).toBe(before);
  });

  test("smtproutes picks the daemon per domain; no route and no fallback means no check", async () => {
    const dead = await freePort();
    const smtproutes = [`example.org:127.0.0.1`, `.example.net:[127.0.0.2]`, `:127.0.0.3`];
    // example.org's route is the stand-in; the default route (127.0.0.3) has nothing listening.
    const line = `qmail_deliverable server smtproutes:${qd.port}`;
    expect((await rcpt(line, "nobody@example.org", { config: { smtproutes } })).code).toBe(550);
    const other = await rcpt(`qmail_deliverable server smtproutes:${dead}`, "nobody@example.net", {
      config: { smtproutes: ["example.org:127.0.0.1"] },
    });
    expect(other.code).toBe(250);
    expect(other.t.logs.some((l) => l.message === "skip, no smtproutes server for example.net")).toBe(true);
  });

  test("the daemon down, answering 204 or an error: the recipient passes (fail open), logged", async () => {
    const dead = await freePort();
    const down = await rcpt(`qmail_deliverable server 127.0.0.1:${dead}`, "nobody@example.org");
    expect(down.code).toBe(250);
    expect(down.t.logs.some((l) => l.level === 4 && l.message.startsWith("error checking nobody@example.org, assuming deliverable"))).toBe(
      true,
    );
    const quiet = await rcpt(`qmail_deliverable server 127.0.0.1:${qd.port}`, "quiet@example.org");
    expect(quiet.code).toBe(250);
    expect(quiet.t.logs.some((l) => l.message === "error, no answer from qmail-deliverabled")).toBe(true);
    const mod = await import("../../plugins/qmail_deliverable.ts");
    const ctx = (server: string) => ({ data: { server: () => server, label: server }, signal: new AbortController().signal }) as never;
    expect(await mod.check!.call(ctx(`127.0.0.1:${qd.port}`), undefined as never)).toEqual([]);
    expect((await mod.check!.call(ctx(`127.0.0.1:${dead}`), undefined as never))[0]).toContain(
      `qmail-deliverabled at 127.0.0.1:${dead} does not answer`,
    );
  });

  test("a daemon that never answers holds RCPT until the plugin's time limit, then passes", async () => {
    let asked = 0;
    const silent = net.createServer(() => asked++);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const clock = new FakeClock();
      const port = (silent.address() as net.AddressInfo).port;
      const t = await TestSession.start({
        clock,
        plugins: [`qmail_deliverable server 127.0.0.1:${port} timeout 3`, "rcpt_ok"],
        config: { rcpthosts: "example.org" },
      });
      await t.command("EHLO c");
      await t.command("MAIL FROM:<a@example.net>");
      let answered = false;
      const r = t.command("RCPT TO:<nobody@example.org>").finally(() => (answered = true));
      for (let i = 0; i < 200 && asked === 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(asked).toBe(1);
      expect(answered).toBe(false);
      await clock.advance(3000);
      expect((await r).code).toBe(250);
    } finally {
      silent.close();
    }
  });

  test("a server that is not HOST:PORT stops start-up", async () => {
    expect(TestSession.start({ plugins: ["qmail_deliverable server localhost"] })).rejects.toThrow('server "localhost" is not HOST:PORT');
  });
});

describe("qmail_deliverable: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word (qpsmtpd fell back to its defaults)", async () => {
    await expectUnknownArgument("qmail_deliverable sever 127.0.0.1:8998", "sever");
    await expect(TestSession.start({ plugins: ["qmail_deliverable server"] })).rejects.toThrow('qmail_deliverable: "server" needs a value');
  });
  test("qpsmtpd's vpopmail_ext loads and says once that it has no effect", async () => {
    const { log } = await loadWarnings("qmail_deliverable server 127.0.0.1:8998 vpopmail_ext 1");
    expect(log.match(/qmail_deliverable: vpopmail_ext 1 has no effect here/g)).toHaveLength(1);
  });
});
