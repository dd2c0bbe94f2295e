/** resolvable_fromhost, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { ehloMailFrom, withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "mx.good.example": { A: ["192.0.2.10"] },
    "mx-domain.example": { MX: [[10, "mx.good.example"]] },
    "a-only.example": { A: ["192.0.2.20"] },
    "loopback.example": { A: ["127.0.0.1"] },
    "broken-dns.example": { servfail: true },
    "private.example": { A: ["10.1.2.3"] },
  });
});
afterAll(() => dns.stop());

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}
const mailFrom = (o: TestSessionOptions, from?: string) => ehloMailFrom(withDnsServer(dns, o, "1"), from);

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

describe("resolvable_fromhost arguments", () => {
  test("resolvable_fromhost: invalid_resolvable_fromhost decides what does not count", async () => {
    expect((await mailFrom({ plugins: ["resolvable_fromhost"] }, "<a@private.example>")).code).toBe(250);
    expect(
      (await mailFrom({ plugins: ["resolvable_fromhost"], config: { invalid_resolvable_fromhost: "10.0.0.0/8" } }, "<a@private.example>"))
        .code,
    ).toBe(450);
  });
});

describe("resolvable_fromhost: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("resolvable_fromhost rejcet 0", "rejcet");
  });
});
