/** relay + rcpt_ok: the open-relay corpus of security.md §3.4 and the relayclients rules. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { isLocal } from "../../plugins/rcpt_ok.ts";
import { cidrContains, matchesClientEntry } from "qpsmtpd";

const config = {
  me: "mx.example.org",
  rcpthosts: ["example.org"],
  relayclients: ["10.1.0.0/16", "2001:db8:1::/48", "172.16.5."],
  norelayclients: ["10.1.2.3"],
};
const plugins = ["relay", "dont_require_anglebrackets", "rcpt_ok"];

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
const ACCEPTED = ["<victim@example.org>", "<victim@EXAMPLE.ORG>", "<Postmaster>", "<postmaster>", "<@evil.test:victim@example.org>", "<postmaster@example.org>", "<x@mx.example.org>"];

async function rcpt(ip: string, to: string, before: string[] = []): Promise<number> {
  const t = await TestSession.start({ plugins, config, remoteIp: ip });
  await t.command("EHLO c");
  for (const c of before) await t.command(c);
  await t.command("MAIL FROM:<a@example.net>");
  return (await t.command(`RCPT TO:${to}`)).code;
}

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
    const t = await TestSession.start({ plugins: ["auth/auth_flat_file", ...plugins], config: { ...config, flat_auth_pw: "u@example.org:pw" }, remoteIp: "192.0.2.50" });
    await t.command("EHLO c");
    await t.command(`AUTH PLAIN ${Buffer.from("\0u@example.org\0nope").toString("base64")}`);
    await t.command("RSET");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<victim@evil.test>")).code).toBe(550);
  });
});

describe("relay clients", () => {
  for (const ip of ["10.1.0.0", "10.1.255.255", "10.1.7.7", "2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", "::ffff:10.1.0.1", "172.16.5.9"]) {
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

describe("helpers", () => {
  test("isLocal: exact, .suffix and me", () => {
    expect(isLocal("a.example.org", "mx", [".example.org"], [])).toBe(true);
    expect(isLocal("example.org", "mx", [".example.org"], [])).toBe(false);
    expect(isLocal("mx", "MX", [], [])).toBe(true);
    expect(isLocal("evilexample.org", "mx", [".example.org"], [])).toBe(false);
  });
  test("cidrContains and client entries", () => {
    expect(cidrContains("192.0.2.0/24", "192.0.2.0")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "192.0.2.255")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "192.0.3.0")).toBe(false);
    expect(cidrContains("::/0", "2001:db8::1")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "2001:db8::1")).toBe(false);
    expect(matchesClientEntry("2001:db8::1", "2001:0db8:0:0::1")).toBe(true);
    expect(matchesClientEntry("192.0.2.1", "::ffff:192.0.2.1")).toBe(true);
  });
});
