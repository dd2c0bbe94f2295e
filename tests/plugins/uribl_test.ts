/** uribl: links in the body (and headers) looked up in URI block lists, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { linkHosts, registeredDomain } from "../../plugins/uribl.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "spam.example.multi.uribl.test": { A: ["127.0.0.4"] },
    "grey.example.multi.uribl.test": { A: ["127.0.0.64"] },
    "example.co.uk.multi.uribl.test": { A: ["127.0.0.2"] },
    "5.113.0.203.multi.uribl.test": { A: ["127.0.0.2"] },
    "spam.example.uri.example": { A: ["127.0.0.2"] },
  });
});
afterAll(() => dns.stop());

const withDns = (o: TestSessionOptions): TestSessionOptions => withDnsServer(dns, o, "1");

async function send(body: string, zones: string, args = "", extra: Record<string, string> = {}) {
  const t = await TestSession.start({
    plugins: [`uribl${args}`],
    config: { uribl_zones: zones, dns_servers: `127.0.0.1:${dns.port}`, ...extra },
  });
  t.mockHook("rcpt", () => OK);
  let stored = "";
  t.mockHook("queue", (txn) => ((stored = txn.header()!.as_string()), OK));
  await t.command("EHLO c");
  await t.command("MAIL FROM:<a@example.net>");
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  return { r: await t.data(`Subject: links\n\n${body}`), header: () => stored };
}

describe("uribl", () => {
  test("deny refuses a message linking a listed domain", async () => {
    const { r } = await send("visit http://www.spam.example/buy now\n", "multi.uribl.test 2,4,8 deny");
    expect([r.code, r.text]).toEqual([552, "spam.example is listed by multi.uribl.test"]);
  });
  test("the mask must match the answer's bits", async () => {
    expect((await send("see https://grey.example/\n", "multi.uribl.test 2,4,8 deny")).r.code).toBe(250);
    expect((await send("see https://grey.example/\n", "multi.uribl.test 64 deny")).r.code).toBe(552);
  });
  test("add-header (the default) marks the message; denysoft defers", async () => {
    const s = await send("www.spam.example\n", "multi.uribl.test");
    expect(s.r.code).toBe(250);
    expect(s.header()).toContain("X-URIBL: spam.example is listed by multi.uribl.test\n");
    expect((await send("http://shop.example.co.uk/x\n", "multi.uribl.test - denysoft")).r.code).toBe(452);
  });
  test("checkip, and whitelisted domains", async () => {
    expect((await send("http://203.0.113.5/x\n", "multi.uribl.test - deny")).r.code).toBe(250);
    expect((await send("http://203.0.113.5/x\n", "multi.uribl.test - deny", " checkip 1")).r.code).toBe(552);
    expect((await send("http://spam.example/\n", "multi.uribl.test - deny", "", { uribl_whitelist_domains: "spam.example" })).r.code).toBe(
      250,
    );
  });
  test("helpers", async () => {
    expect(await registeredDomain("a.b.shop.example.co.uk")).toBe("example.co.uk");
    expect(await registeredDomain("www.spam.example")).toBe("spam.example");
    // The Public Suffix List (tldts), not a short built-in list: deeper suffixes, wildcards and
    // exceptions, the private section; addresses stay as they are.
    expect(await registeredDomain("a.b.shop.example.com.au")).toBe("example.com.au");
    expect(await registeredDomain("www.example.pvt.k12.ma.us")).toBe("example.pvt.k12.ma.us");
    expect(await registeredDomain("www.city.kawasaki.jp")).toBe("city.kawasaki.jp");
    expect(await registeredDomain("x.spammer.github.io")).toBe("spammer.github.io");
    expect(await registeredDomain("WWW.Example.ORG.")).toBe("example.org");
    expect(await registeredDomain("198.51.100.7")).toBe("198.51.100.7");
    expect(linkHosts("x http://A.Example/p and www.b.example, https://1.2.3.4/ and mailto:x@y.example")).toEqual([
      "a.example",
      "www.b.example",
      "1.2.3.4",
    ]);
  });
});

describe("uribl arguments", () => {
  const send = async (args: string, message: string) => {
    const t = await TestSession.start(withDns({ plugins: [`uribl${args}`], config: { uribl_zones: "uri.example" } }));
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    return (await t.data(message)).code;
  };
  test("action sets the default; scan-headers looks at the header; max_lookups caps the lookups", async () => {
    expect(await send(" action deny", "Subject: x\n\nhttp://spam.example/\n")).toBe(552);
    expect(await send(" action deny", "Subject: http://spam.example/\n\nclean\n")).toBe(250);
    expect(await send(" action deny scan-headers 1", "Subject: http://spam.example/\n\nclean\n")).toBe(552);
    expect(await send(" action deny max_lookups 1", "Subject: x\n\nhttp://a.example/ http://spam.example/\n")).toBe(250);
  });
});

describe("uribl: unknown arguments", () => {
  const send = async (args: string, message: string) => {
    const t = await TestSession.start(withDns({ plugins: [`uribl${args}`], config: { uribl_zones: "uri.example" } }));
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    return (await t.data(message)).code;
  };
  test("qpsmtpd's spellings: check-headers, and yes/no for the switches", async () => {
    expect(await send(" action deny check-headers yes", "Subject: http://spam.example/\n\nclean\n")).toBe(552);
    expect(await send(" action deny scan-headers no", "Subject: http://spam.example/\n\nclean\n")).toBe(250);
  });
  test("a misspelt key, action or switch stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("uribl scan_headers 1", "scan_headers");
    await expect(TestSession.start({ plugins: ["uribl action reject"] })).rejects.toThrow(
      'uribl: action is add-header, deny or denysoft, not "reject"',
    );
    await expect(TestSession.start({ plugins: ["uribl checkip maybe"] })).rejects.toThrow(
      'uribl: checkip is 1 or 0 (yes or no), not "maybe"',
    );
  });
});
