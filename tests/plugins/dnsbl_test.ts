/** dnsbl, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    // 192.0.2.66 is listed; 192.0.2.77 is listed only in the zone with a custom message
    "66.2.0.192.bl.example": { A: ["127.0.0.2"], TXT: ["listed: see https://bl.example/66"] },
    "77.2.0.192.quiet.example": { A: ["127.0.0.2"] },
    "88.2.0.192.bl.example": { A: ["127.0.0.2"], delayMs: 600 },
    "99.2.0.192.slow.example": { drop: true },
  });
});
afterAll(() => dns.stop());

const withDns = (o: TestSessionOptions): TestSessionOptions => withDnsServer(dns, o, "1");

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}

async function toRcpt(t: TestSession, from = "<a@example.net>"): Promise<{ code: number; text: string }> {
  await t.command("EHLO client.example");
  const m = await t.command(`MAIL FROM:${from}`);
  if (m.code !== 250) return m;
  return t.command("RCPT TO:<b@example.org>");
}

describe("dnsbl", () => {
  const zones = { dnsbl_zones: ["bl.example", "quiet.example:Blocked, see https://quiet.example/?ip=%IP%", "slow.example"] };
  test("a listed client is refused at RCPT with the zone's TXT", async () => {
    const t = await start({ ip: "192.0.2.66", plugins: ["dnsbl", "rcpt_ok"], config: zones });
    expect(t.greeting?.code).toBe(220);
    const r = await toRcpt(t);
    expect([r.code, r.text]).toEqual([550, "listed: see https://bl.example/66"]);
    expect(t.connection.notes("dnsbl")).toBe("listed: see https://bl.example/66");
  });
  test("zone:message gives the text, with %IP%; dnsbl_rejectmsg comes first", async () => {
    const t = await start({ ip: "192.0.2.77", plugins: ["dnsbl"], config: { ...zones, dnsbl_rejectmsg: "Ask your ISP." } });
    const r = await toRcpt(t);
    expect(r.code).toBe(550);
    expect(t.replies.at(-1)!.lines).toEqual(["5.7.1 Ask your ISP.", "5.7.1 Blocked, see https://quiet.example/?ip=192.0.2.77"]);
  });
  test("unlisted and allowed clients pass; a silent zone does not stall the session", async () => {
    const started = Date.now();
    const clean = await start({ ip: "192.0.2.99", plugins: ["dnsbl", "rcpt_ok"], config: { ...zones, rcpthosts: "example.org" } });
    expect((await toRcpt(clean)).code).toBe(250);
    expect(Date.now() - started).toBeLessThan(3000);
    const allowed = await start({
      ip: "192.0.2.66",
      plugins: ["dnsbl", "rcpt_ok"],
      config: { ...zones, rcpthosts: "example.org", dnsbl_allow: "192.0.2." },
    });
    expect((await toRcpt(allowed)).code).toBe(250);
  });
  test("reject naughty defers to naughty; reject 0 only notes", async () => {
    const n = await start({ ip: "192.0.2.66", plugins: ["dnsbl reject naughty", "naughty reject mail"], config: zones });
    await n.command("EHLO c");
    expect((await n.command("MAIL FROM:<a@example.net>")).code).toBe(550);
    const z = await start({ ip: "192.0.2.66", plugins: ["dnsbl reject 0", "rcpt_ok"], config: { ...zones, rcpthosts: "example.org" } });
    expect((await toRcpt(z)).code).toBe(250);
  });
  test("RBLSMTPD: empty skips, text refuses", async () => {
    process.env["RBLSMTPD"] = "";
    try {
      const t = await start({ ip: "192.0.2.66", plugins: ["dnsbl", "rcpt_ok"], config: { ...zones, rcpthosts: "example.org" } });
      expect((await toRcpt(t)).code).toBe(250);
      process.env["RBLSMTPD"] = "Go away %IP%";
      const u = await start({ ip: "192.0.2.1", plugins: ["dnsbl"], config: zones });
      expect((await toRcpt(u)).text).toBe("Go away 192.0.2.1");
    } finally {
      delete process.env["RBLSMTPD"];
    }
  });
  test("a connection in a slow lookup does not hold up another connection's delivery", async () => {
    const slow = await start({ ip: "192.0.2.88", plugins: ["dnsbl"], config: { ...zones, dns_timeout: "3" } });
    await slow.command("EHLO c");
    const slowRcpt = (async () => {
      await slow.command("MAIL FROM:<a@example.net>");
      return slow.command("RCPT TO:<b@example.org>");
    })();
    const started = Date.now();
    const fast = await start({ ip: "192.0.2.99", plugins: ["rcpt_ok"], config: { rcpthosts: "example.org" } });
    fast.mockHook("queue", () => OK);
    await toRcpt(fast);
    await fast.command("DATA");
    expect((await fast.data("Subject: quick\n\nx\n")).code).toBe(250);
    const fastDone = Date.now() - started;
    expect((await slowRcpt).code).toBe(550);
    expect(fastDone).toBeLessThan(Date.now() - started);
    expect(fastDone).toBeLessThan(500);
  });
});

describe("dnsbl reject arguments", () => {
  test("dnsbl reject_type temp defers at RCPT", async () => {
    const t = await TestSession.start(
      withDns({ plugins: ["dnsbl reject_type temp"], remoteIp: "192.0.2.66", config: { dnsbl_zones: "bl.example" } }),
    );
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(450);
  });
});

describe("dnsbl arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("dnsbl reject_type disconnect zones", "zones");
  });
});
