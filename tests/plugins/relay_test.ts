/** relay: the relayclients, norelayclients, RELAYCLIENT and only rules. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { relayConfig as config, relayRcpt as rcpt } from "../helpers/relay.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("relay clients", () => {
  for (
    const ip of [
      "10.1.0.0",
      "10.1.255.255",
      "10.1.7.7",
      "2001:db8:1::",
      "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
      "::ffff:10.1.0.1",
      "172.16.5.9",
    ]
  ) {
    test(`${ip} may relay (CIDR bounds inclusive)`, async () => {
      expect(await rcpt(ip, "<victim@evil.test>")).toBe(250);
    });
  }
  test("norelayclients wins over relayclients", async () => {
    expect(await rcpt("10.1.2.3", "<victim@evil.test>")).toBe(550);
  });
  test("a neighbour outside the range may not", async () => {
    expect(await rcpt("10.2.0.1", "<victim@evil.test>")).toBe(550);
    expect(await rcpt("2001:db8:2::1", "<victim@evil.test>")).toBe(550);
  });
  test("a relayclients entry with a malformed length (`10.0.0.0/`) admits nobody, not everybody", async () => {
    const t = await TestSession.start({
      plugins: ["relay", "rcpt_ok"],
      config: { ...config, relayclients: ["10.0.0.0/", "192.0.2.0/0x18"] },
      remoteIp: "198.51.100.7",
    });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<victim@evil.test>")).code).toBe(550);
  });
  test("only 1 refuses every recipient from a non-relay client", async () => {
    const t = await TestSession.start({ plugins: ["relay only 1", "rcpt_ok"], config, remoteIp: "192.0.2.50" });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<victim@example.org>")).code).toBe(550);
  });
  test("RELAYCLIENT in the environment makes every client a relay client", async () => {
    process.env["RELAYCLIENT"] = "";
    try {
      expect(await rcpt("192.0.2.50", "<victim@evil.test>")).toBe(250);
    } finally {
      delete process.env["RELAYCLIENT"];
    }
  });
});

describe("relay arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("relay only 1 always", "always");
  });
});
