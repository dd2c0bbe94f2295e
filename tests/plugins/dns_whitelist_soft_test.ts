/** dns_whitelist_soft, against a loopback DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "50.2.0.192.wl.example": { A: ["127.0.0.2"], TXT: ["trusted partner"] },
  });
});
afterAll(() => dns.stop());

async function start(opts: TestSessionOptions & { ip: string }): Promise<TestSession> {
  return TestSession.start({ ...withDnsServer(dns, opts, "0.3"), remoteIp: opts.ip });
}

describe("dns_whitelist_soft", () => {
  test("a listed client gets the whitelisthost note, which other plugins respect", async () => {
    const t = await start({ ip: "192.0.2.50", plugins: ["dns_whitelist_soft", "helo"], config: { whitelist_zones: "wl.example" } });
    expect(t.connection.notes("whitelisthost")).toBe("trusted partner");
    expect((await t.command("EHLO localhost")).code).toBe(250);
    const u = await start({ ip: "192.0.2.51", plugins: ["dns_whitelist_soft"], config: { whitelist_zones: "wl.example" } });
    expect(u.connection.notes("whitelisthost")).toBeUndefined();
  });
});

describe("dns_whitelist_soft arguments", () => {
  test("it takes none (the zones are a config file): a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("dns_whitelist_soft whitelist_zones list.example", "whitelist_zones");
  });
});
