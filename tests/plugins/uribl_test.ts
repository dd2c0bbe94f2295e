import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { linkHosts, registeredDomain } from "../../plugins/uribl.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "spam.example.multi.uribl.test": { A: ["127.0.0.4"] },
    "grey.example.multi.uribl.test": { A: ["127.0.0.64"] },
    "example.co.uk.multi.uribl.test": { A: ["127.0.0.2"] },
    "5.113.0.203.multi.uribl.test": { A: ["127.0.0.2"] },
  });
});
afterAll(() => dns.stop());

async function send(body: string, zones: string, args = "", extra: Record<string, string> = {}) {
  const t = await TestSession.start({ plugins: [`uribl${args}`], config: { uribl_zones: zones, dns_servers: `127.0.0.1:${dns.port}`, ...extra } });
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
    expect((await send("http://spam.example/\n", "multi.uribl.test - deny", "", { uribl_whitelist_domains: "spam.example" })).r.code).toBe(250);
  });
  test("helpers", () => {
    expect(registeredDomain("a.b.shop.example.co.uk")).toBe("example.co.uk");
    expect(registeredDomain("www.spam.example")).toBe("spam.example");
    expect(linkHosts("x http://A.Example/p and www.b.example, https://1.2.3.4/ and mailto:x@y.example")).toEqual(["a.example", "www.b.example", "1.2.3.4"]);
  });
});
