/** rhsbl, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { ehloMailFrom, withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "spammy.example.rhs.example": { A: ["127.0.0.2"], TXT: ["sends spam"] },
  });
});
afterAll(() => dns.stop());

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}
const mailFrom = (o: TestSessionOptions, from?: string) => ehloMailFrom(withDnsServer(dns, o, "1"), from);

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

describe("rhsbl reject arguments", () => {
  test("rhsbl reject 0 and a zone's own message", async () => {
    expect((await mailFrom({ plugins: ["rhsbl reject 0"], config: { rhsbl_zones: "rhs.example" } }, "<x@spammy.example>")).code).toBe(250);
    const r = await mailFrom({ plugins: ["rhsbl"], config: { rhsbl_zones: "rhs.example is a known spam source" } }, "<x@spammy.example>");
    expect(r.text).toBe("Mail from spammy.example rejected because it is a known spam source");
  });
});

describe("rhsbl arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("rhsbl dbl.example", "dbl.example");
  });
});
