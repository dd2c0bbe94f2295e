/** fcrdns, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { ehloMailFrom, withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "10.2.0.192.in-addr.arpa": { PTR: ["mx.good.example"] },
    "mx.good.example": { A: ["192.0.2.10"] },
    "11.2.0.192.in-addr.arpa": { PTR: ["liar.example"] },
    "liar.example": { A: ["198.51.100.1"] },
    "12.2.0.192.in-addr.arpa": { servfail: true },
  });
});
afterAll(() => dns.stop());

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}
const mailFrom = (o: TestSessionOptions, from?: string) => ehloMailFrom(withDnsServer(dns, o, "1"), from);

describe("fcrdns", () => {
  const run = async (ip: string, args = "") => {
    const t = await start({ ip, plugins: [`fcrdns${args}`, "rcpt_ok"], config: { rcpthosts: "example.org", me: "mx.example.org" } });
    t.mockHook("queue", () => OK);
    return t;
  };
  /** Greets and gives MAIL, which waits for the verdict; returns the MAIL reply code. */
  const mail = async (t: TestSession): Promise<number> => {
    await t.command("EHLO c");
    return (await t.command("MAIL FROM:<a@example.net>")).code;
  };
  test("pass: PTR resolves back; iprev=pass in Authentication-Results; remote_host set", async () => {
    const t = await run("192.0.2.10");
    expect(t.greeting?.code).toBe(220);
    let header = "";
    t.mockHook("data_post", (txn) => void (header = txn.header()!.get("Authentication-Results", 0)!));
    expect(await mail(t)).toBe(250);
    expect(t.connection.remote_host).toBe("mx.good.example");
    expect(t.connection.notes("fcrdns")).toBe("pass");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    await t.data("Subject: x\n\ny\n");
    expect(header).toBe("mx.example.org; auth=none; iprev=pass policy.iprev=192.0.2.10 (mx.good.example)\n");
  });
  test("fail, permerror and temperror are recorded; reject 1 refuses fail at MAIL", async () => {
    for (const [ip, verdict] of [["192.0.2.11", "fail"], ["192.0.2.13", "permerror"], ["192.0.2.12", "temperror"]] as const) {
      const t = await run(ip!);
      expect(await mail(t)).toBe(250);
      expect(t.connection.notes("fcrdns")).toBe(verdict);
    }
    const r = await run("192.0.2.11", " reject 1");
    expect(await mail(r)).toBe(550);
    expect(r.closed).toBe(true);
    expect(await mail(await run("192.0.2.12", " reject 1"))).toBe(250);
  });
  test("the greeting does not wait for the lookups", async () => {
    dns.zone["14.2.0.192.in-addr.arpa"] = { PTR: ["slow.example"], delayMs: 800 };
    const started = Date.now();
    const t = await start({ ip: "192.0.2.14", plugins: ["fcrdns"], config: { dns_timeout: "3" } });
    expect(t.greeting?.code).toBe(220);
    expect(Date.now() - started).toBeLessThan(400);
  });
});

describe("fcrdns reject arguments", () => {
  test("fcrdns reject naughty defers; reject_type temp", async () => {
    const n = await mailFrom({ plugins: ["fcrdns reject naughty", "naughty reject rcpt"], remoteIp: "192.0.2.11" });
    expect(n.code).toBe(250);
    expect(String(n.t.connection.notes("naughty"))).toContain("iprev=fail");
    expect((await mailFrom({ plugins: ["fcrdns reject 1 reject_type temp"], remoteIp: "192.0.2.11" })).code).toBe(450);
  });
});

describe("fcrdns: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("fcrdns reject_tpye temp", "reject_tpye");
  });
});
