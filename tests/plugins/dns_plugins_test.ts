/** dnsbl, rhsbl, fcrdns, resolvable_fromhost, helo, dns_whitelist_soft, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    // 192.0.2.66 is listed; 192.0.2.77 is listed only in the zone with a custom message
    "66.2.0.192.bl.example": { A: ["127.0.0.2"], TXT: ["listed: see https://bl.example/66"] },
    "77.2.0.192.quiet.example": { A: ["127.0.0.2"] },
    "88.2.0.192.bl.example": { A: ["127.0.0.2"], delayMs: 600 },
    "99.2.0.192.slow.example": { drop: true },
    "50.2.0.192.wl.example": { A: ["127.0.0.2"], TXT: ["trusted partner"] },
    // rhsbl
    "spammy.example.rhs.example": { A: ["127.0.0.2"], TXT: ["sends spam"] },
    // fcrdns
    "10.2.0.192.in-addr.arpa": { PTR: ["mx.good.example"] },
    "mx.good.example": { A: ["192.0.2.10"] },
    "11.2.0.192.in-addr.arpa": { PTR: ["liar.example"] },
    "liar.example": { A: ["198.51.100.1"] },
    "12.2.0.192.in-addr.arpa": { servfail: true },
    // resolvable_fromhost
    "mx-domain.example": { MX: [[10, "mx.good.example"]] },
    "a-only.example": { A: ["192.0.2.20"] },
    "loopback.example": { A: ["127.0.0.1"] },
    "broken-dns.example": { servfail: true },
    // helo
    "helo.good.example": { A: ["192.0.2.10"] },
    "elsewhere.example": { A: ["198.51.100.7"] },
  });
});
afterAll(() => dns.stop());

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({
    ...opts,
    remoteIp: opts.ip,
    config: { dns_servers: `127.0.0.1:${dns.port}`, dns_timeout: "0.3", ...opts.config },
  });
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
    expect(t.replies.at(-1)!.lines).toEqual(["Ask your ISP.", "Blocked, see https://quiet.example/?ip=192.0.2.77"]);
  });
  test("unlisted and allowed clients pass; a silent zone does not stall the session", async () => {
    const started = Date.now();
    const clean = await start({ ip: "192.0.2.99", plugins: ["dnsbl", "rcpt_ok"], config: { ...zones, rcpthosts: "example.org" } });
    expect((await toRcpt(clean)).code).toBe(250);
    expect(Date.now() - started).toBeLessThan(3000);
    const allowed = await start({ ip: "192.0.2.66", plugins: ["dnsbl", "rcpt_ok"], config: { ...zones, rcpthosts: "example.org", dnsbl_allow: "192.0.2." } });
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

describe("rhsbl", () => {
  test("refuses a sender whose domain is listed", async () => {
    const t = await start({ ip: "192.0.2.1", plugins: ["rhsbl"], config: { rhsbl_zones: "rhs.example" } });
    await t.command("EHLO c");
    const r = await t.command("MAIL FROM:<x@spammy.example>");
    expect([r.code, r.text]).toEqual([550, "Mail from spammy.example rejected because it sends spam"]);
    expect((await t.command("MAIL FROM:<x@fine.example>")).code).toBe(250);
    expect((await t.command("MAIL FROM:<>")).code).toBe(250);
  });
});

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

describe("resolvable_fromhost", () => {
  const run = async (from: string, args = "") => {
    const t = await start({ ip: "192.0.2.1", plugins: [`resolvable_fromhost${args}`] });
    await t.command("EHLO c");
    return t.command(`MAIL FROM:${from}`);
  };
  test("MX or A passes; nothing, loopback-only or no FQDN is refused temporarily", async () => {
    expect((await run("<a@mx-domain.example>")).code).toBe(250);
    expect((await run("<a@a-only.example>")).code).toBe(250);
    expect(await run("<a@nowhere.example>")).toMatchObject({ code: 450, text: "Could not resolve nowhere.example" });
    expect((await run("<a@loopback.example>")).code).toBe(450);
    expect((await run("<a@[192.0.2.1]>")).code).toBe(250);
    expect((await run("<>")).code).toBe(250);
  });
  test("reject_type perm, reject 0, and DNS trouble is not held against the sender", async () => {
    expect((await run("<a@nowhere.example>", " reject_type perm")).code).toBe(550);
    expect((await run("<a@nowhere.example>", " reject 0")).code).toBe(250);
    expect((await run("<a@broken-dns.example>")).code).toBe(250);
  });
});

describe("helo", () => {
  const run = async (name: string, args = "", ip = "192.0.2.10", config: Record<string, string | string[]> = {}) => {
    const t = await start({ ip, plugins: [`helo${args}`], config });
    const r = await t.command(`EHLO ${name}`);
    return { ...r, t };
  };
  test("lenient: localhost, bare IP, forged literal", async () => {
    expect((await run("localhost")).text).toBe("You are not localhost");
    expect((await run("localhost", "", "127.0.0.1")).code).toBe(250);
    expect((await run("192.0.2.10")).text).toBe("Plain IP is invalid HELO hostname (RFC 2821)");
    expect((await run("[198.51.100.1]")).text).toBe("Forged IPs not accepted here");
    expect((await run("[192.0.2.10]")).code).toBe(250);
    expect((await run("nonexistent-but-lenient")).code).toBe(250);
    const r = await run("localhost");
    expect(r.t.closed).toBe(true); // reject_type defaults to disconnect
  });
  test("badhelo: names, patterns and negated patterns", async () => {
    const bad = { badhelo: ["\\.spam\\.example$", "evil.example"] };
    expect((await run("x.spam.example", "", "192.0.2.10", bad)).text).toBe("Your HELO hostname is not allowed");
    expect((await run("EVIL.example", "", "192.0.2.10", bad)).text).toBe("I do not believe you are EVIL.example.");
    expect((await run("fine.example", "", "192.0.2.10", bad)).code).toBe(250);
    const only = { badhelo: "!^mail\\." };
    expect((await run("mail.example", "", "192.0.2.10", only)).code).toBe(250);
    expect((await run("web.example", "", "192.0.2.10", only)).code).toBe(550);
  });
  test("rfc: FQDN, forward DNS, reverse DNS", async () => {
    expect((await run("shortname", " policy rfc")).text).toBe("HELO name is not fully qualified. Read RFC 2821");
    expect((await run("bad_name.example", " policy rfc")).text).toBe("HELO name contains invalid FQDN characters. Read RFC 1035");
    expect((await run("nowhere.example", " policy rfc")).text).toBe("HELO hostname did not resolve");
    expect((await run("elsewhere.example", " policy rfc")).code).toBe(250);
    expect((await run("elsewhere.example", " policy rfc", "192.0.2.13")).text).toBe("no rDNS for 192.0.2.13");
  });
  test("strict: the name and the client must agree one way or the other; no literals", async () => {
    expect((await run("elsewhere.example", " policy strict")).text).toBe("That HELO hostname fails FCrDNS");
    const ok = await run("helo.good.example", " policy strict");
    expect(ok.code).toBe(250);
    expect(ok.t.connection.notes("helo_forward_match")).toBe(1);
    expect(ok.t.connection.notes("helo_reverse_match")).toBe(1);
    expect((await run("[192.0.2.10]", " policy strict")).text).toBe("RFC 2821 allows an address literal, but we do not");
    expect((await run("localhost", " reject 0")).code).toBe(250);
  });
});

describe("dns_whitelist_soft", () => {
  test("a listed client gets the whitelisthost note, which other plugins respect", async () => {
    const t = await start({ ip: "192.0.2.50", plugins: ["dns_whitelist_soft", "helo"], config: { whitelist_zones: "wl.example" } });
    expect(t.connection.notes("whitelisthost")).toBe("trusted partner");
    expect((await t.command("EHLO localhost")).code).toBe(250);
    const u = await start({ ip: "192.0.2.51", plugins: ["dns_whitelist_soft"], config: { whitelist_zones: "wl.example" } });
    expect(u.connection.notes("whitelisthost")).toBeUndefined();
  });
});
