/** rcpt_ok: the open-relay corpus of security.md §3.4 (from a client that may not relay), isLocal, and the plugin loglevel argument. */
import { describe, expect, test } from "bun:test";
import { LOGDEBUG, LOGINFO } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { isLocal } from "../../plugins/rcpt_ok.ts";
import { relayConfig as config, relayPlugins as plugins, relayRcpt as rcpt } from "../helpers/relay.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const REFUSED = [
  "<victim@evil.test>",
  "<VICTIM@EVIL.TEST>",
  "<victim@evil.test.>",
  "<victim@example.org.evil.test>",
  "<victim@evil-example.org>",
  "<victim@[192.0.2.99]>",
  "<victim@[IPv6:2001:db8::99]>",
  "<victim@192.0.2.99>",
  "<victim@localhost>",
  "<victim@[127.0.0.1]>",
  "<victim%evil.test@example.org>",
  "<victim%evil.test@mx.example.org>",
  "<victim%evil.test@[192.0.2.10]>",
  "<evil.test!victim@example.org>",
  "<evil.test!victim@[192.0.2.10]>",
  "<evil.test!victim>",
  '<"victim@evil.test">',
  '<"victim%evil.test">',
  '<"victim@evil.test"@example.org>',
  '<"victim@evil.test"@[192.0.2.10]>',
  "<victim@evil.test@example.org>",
  "<victim@evil.test@[192.0.2.10]>",
  "<@example.org:victim@evil.test>",
  "<@[192.0.2.10]:victim@evil.test>",
  "<@example.org,@mx.example.org:victim@evil.test>",
  "<victim@example.org,other@evil.test>",
  "victim@evil.test",
  "<postmaster@evil.test>",
  "<victim@evil.test\\@example.org>",
];
const ACCEPTED = [
  "<victim@example.org>",
  "<victim@EXAMPLE.ORG>",
  "<Postmaster>",
  "<postmaster>",
  "<@evil.test:victim@example.org>",
  "<postmaster@example.org>",
  "<x@mx.example.org>",
];

describe("relay corpus from a client that may not relay", () => {
  for (const to of REFUSED) {
    test(`refuses ${to}`, async () => {
      const code = await rcpt("192.0.2.50", to);
      expect(code === 550 || code === 501).toBe(true);
    });
  }
  for (const to of ACCEPTED) {
    test(`accepts ${to}`, async () => {
      expect(await rcpt("192.0.2.50", to)).toBe(250);
    });
  }
  test("the sender does not change the outcome", async () => {
    for (const from of ["<>", "<postmaster@example.org>", "<x@[192.0.2.10]>"]) {
      const t = await TestSession.start({ plugins, config, remoteIp: "192.0.2.50" });
      await t.command("EHLO c");
      await t.command(`MAIL FROM:${from}`);
      expect((await t.command("RCPT TO:<victim@evil.test>")).code).toBe(550);
    }
  });
  test("RSET and a failed AUTH do not grant relaying", async () => {
    const t = await TestSession.start({
      plugins: ["auth/auth_flat_file", ...plugins],
      config: { ...config, flat_auth_pw: "u@example.org:pw" },
      remoteIp: "192.0.2.50",
    });
    await t.command("EHLO c");
    await t.command(`AUTH PLAIN ${Buffer.from("\0u@example.org\0nope").toString("base64")}`);
    await t.command("RSET");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<victim@evil.test>")).code).toBe(550);
  });
});

describe("helpers", () => {
  test("isLocal: exact, .suffix and me", () => {
    expect(isLocal("a.example.org", "mx", [".example.org"], [])).toBe(true);
    expect(isLocal("example.org", "mx", [".example.org"], [])).toBe(false);
    expect(isLocal("mx", "MX", [], [])).toBe(true);
    expect(isLocal("evilexample.org", "mx", [".example.org"], [])).toBe(false);
  });
});

describe("IDN domains (SMTPUTF8)", () => {
  const utf8 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");
  async function rcptTo(rcpthosts: string[], to: string): Promise<number> {
    const t = await TestSession.start({ plugins, config: { ...config, rcpthosts } });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net> SMTPUTF8");
    return (await t.send(utf8(`RCPT TO:${to}\r\n`)))[0]!.code;
  }

  test("a u-label recipient matches an a-label rcpthosts entry, and the reverse; a lookalike does not", async () => {
    expect(await rcptTo(["xn--bcher-kva.example"], "<jörg@bücher.example>")).toBe(250);
    expect(await rcptTo(["bücher.example"], "<a@XN--BCHER-KVA.example>")).toBe(250);
    expect(await rcptTo([".bücher.example"], "<a@mx.bücher.example>")).toBe(250);
    expect(await rcptTo(["bücher.example"], "<a@bucher.example>")).toBe(550);
  });
});

describe("plugin loglevel argument", () => {
  test("absolute and relative levels shift every line of the plugin", async () => {
    const seen: Array<[number, string]> = [];
    for (const arg of ["loglevel 2", "loglevel +1", "loglevel -2"]) {
      const t = await TestSession.start({ plugins: [`rcpt_ok ${arg}`], config: { rcpthosts: "example.org" } });
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
      for (const l of t.logs) if (l.plugin === "rcpt_ok" && l.message.startsWith("fail")) seen.push([l.level, arg]);
    }
    expect(seen).toEqual([[2, "loglevel 2"], [LOGDEBUG, "loglevel +1"], [4, "loglevel -2"]]);
    expect(LOGINFO + 1).toBe(LOGDEBUG);
  });
});

describe("rcpt_ok arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("rcpt_ok me", "me");
  });
});
