/** helo: lenient, rfc and strict policies and badhelo, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "10.2.0.192.in-addr.arpa": { PTR: ["mx.good.example"] },
    "mx.good.example": { A: ["192.0.2.10"] },
    "helo.good.example": { A: ["192.0.2.10"] },
    "elsewhere.example": { A: ["198.51.100.7"] },
  });
});
afterAll(() => dns.stop());

const withDns = (o: TestSessionOptions): TestSessionOptions => withDnsServer(dns, o, "1");

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}

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
    expect((await run("2001:db8::1")).text).toBe("Plain IP is invalid HELO hostname (RFC 2821)");
    expect((await run("::ffff:192.0.2.10")).text).toBe("Plain IP is invalid HELO hostname (RFC 2821)");
    expect((await run("192.0.2.10.example")).code).toBe(250);
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

describe("helo reject arguments", () => {
  test("helo reject_type temp", async () => {
    const t = await TestSession.start(withDns({ plugins: ["helo reject_type temp"], remoteIp: "192.0.2.1" }));
    expect((await t.command("EHLO localhost")).code).toBe(450);
  });
});

describe("helo arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("helo policy rfc stricter 1", "stricter");
  });
});
