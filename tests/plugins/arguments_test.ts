/** The arguments not exercised elsewhere: one test per plugin argument family. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, LOGDEBUG, LOGINFO, OK } from "qpsmtpd";
import type { Hooks } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { startServer } from "../helpers/server.ts";
import { RawClient } from "../e2e/helpers.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "66.2.0.192.bl.example": { A: ["127.0.0.2"] },
    "spammy.example.rhs.example": { A: ["127.0.0.2"] },
    "11.2.0.192.in-addr.arpa": { PTR: ["liar.example"] },
    "liar.example": { A: ["198.51.100.1"] },
    "private.example": { A: ["10.1.2.3"] },
    "spam.example.uri.example": { A: ["127.0.0.2"] },
  });
});
afterAll(() => dns.stop());

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpargs-"));
const withDns = (o: TestSessionOptions): TestSessionOptions => ({ ...o, config: { dns_servers: `127.0.0.1:${dns.port}`, dns_timeout: "1", ...o.config } });

async function mailFrom(o: TestSessionOptions, from = "<a@example.net>"): Promise<{ code: number; text: string; t: TestSession }> {
  const t = await TestSession.start(withDns(o));
  await t.command("EHLO client.example");
  return { ...(await t.command(`MAIL FROM:${from}`)), t };
}

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

describe("greylisting arguments", () => {
  const attempt = async (args: string, from = "<a@example.net>", ip = "192.0.2.60") => {
    const t = await TestSession.start({ plugins: [`greylisting ${args}`, "rcpt_ok"], remoteIp: ip, config: { rcpthosts: "example.org" } });
    await t.command("EHLO c");
    await t.command(`MAIL FROM:${from}`);
    return (await t.command("RCPT TO:<b@example.org>")).code;
  };
  test("sender 1 keys on the sender; remote_ip 0 ignores the address", async () => {
    const a = `db_dir ${dbDir()} sender 1 black_timeout 0`;
    expect(await attempt(a)).toBe(450);
    expect(await attempt(a)).toBe(250);
    expect(await attempt(a, "<other@example.net>")).toBe(450);
    const b = `db_dir ${dbDir()} sender 1 remote_ip 0 black_timeout 0`;
    expect(await attempt(b, "<a@example.net>", "192.0.2.61")).toBe(450);
    expect(await attempt(b, "<a@example.net>", "192.0.2.62")).toBe(250);
  });
  test("grey_timeout forgets an unanswered first try; white_timeout forgets a passed sender", async () => {
    const g = `db_dir ${dbDir()} recipient 1 black_timeout 0 grey_timeout 1`;
    expect(await attempt(g)).toBe(450);
    await Bun.sleep(1100);
    expect(await attempt(g)).toBe(450); // the first try was forgotten: this is a new first try
    const w = `db_dir ${dbDir()} recipient 1 black_timeout 0 white_timeout 1`;
    expect(await attempt(w)).toBe(450);
    expect(await attempt(w)).toBe(250);
    await Bun.sleep(1100);
    expect(await attempt(w)).toBe(450);
  }, 10000);
});

describe("karma arguments", () => {
  const bad = (n: number): Hooks["mail"] => function () {
    this.adjust_karma(n);
    return DECLINED;
  };
  const visit = async (args: string, score: number, ip: string) => {
    const t = await TestSession.start({ plugins: [`karma ${args}`, "scorer"], modules: { scorer: { hook_mail: bad(score) } }, remoteIp: ip });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.end();
    return (await TestSession.start({ plugins: [`karma ${args}`], remoteIp: ip })).greeting!;
  };
  test("negative sets the threshold; penalty_days the length; reject_type the code; reject 0 only notes", async () => {
    const dir = dbDir();
    expect((await visit(`db_dir ${dir} negative 3`, -2, "192.0.2.70")).code).toBe(220);
    const g = await visit(`db_dir ${dir} negative 3 penalty_days 2`, -3, "192.0.2.71");
    expect([g.code, g.text]).toEqual([450, "You were naughty. You cannot connect for 2 more days."]);
    expect((await visit(`db_dir ${dir} reject_type perm`, -1, "192.0.2.72")).code).toBe(550);
    expect((await visit(`db_dir ${dir} reject 0`, -1, "192.0.2.73")).code).toBe(220);
  });
});

describe("karma_tlds", () => {
  test("the PTR name's TLD adds its score", async () => {
    const t = await TestSession.start({ plugins: [`karma db_dir ${dbDir()}`], config: { karma_tlds: ["info -3", "org 1"] }, remoteIp: "192.0.2.80" });
    t.connection.remote_host = "host.spammy.info";
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(t.connection.notes("karma")).toBe(-3);
  });
});

describe("reject and reject_type on DNS plugins", () => {
  test("dnsbl reject_type temp defers at RCPT", async () => {
    const t = await TestSession.start(withDns({ plugins: ["dnsbl reject_type temp"], remoteIp: "192.0.2.66", config: { dnsbl_zones: "bl.example" } }));
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(450);
  });
  test("rhsbl reject 0 and a zone's own message", async () => {
    expect((await mailFrom({ plugins: ["rhsbl reject 0"], config: { rhsbl_zones: "rhs.example" } }, "<x@spammy.example>")).code).toBe(250);
    const r = await mailFrom({ plugins: ["rhsbl"], config: { rhsbl_zones: "rhs.example is a known spam source" } }, "<x@spammy.example>");
    expect(r.text).toBe("Mail from spammy.example rejected because it is a known spam source");
  });
  test("fcrdns reject naughty defers; reject_type temp", async () => {
    const n = await mailFrom({ plugins: ["fcrdns reject naughty", "naughty reject rcpt"], remoteIp: "192.0.2.11" });
    expect(n.code).toBe(250);
    expect(String(n.t.connection.notes("naughty"))).toContain("iprev=fail");
    expect((await mailFrom({ plugins: ["fcrdns reject 1 reject_type temp"], remoteIp: "192.0.2.11" })).code).toBe(450);
  });
  test("resolvable_fromhost: invalid_resolvable_fromhost decides what does not count", async () => {
    expect((await mailFrom({ plugins: ["resolvable_fromhost"] }, "<a@private.example>")).code).toBe(250);
    expect((await mailFrom({ plugins: ["resolvable_fromhost"], config: { invalid_resolvable_fromhost: "10.0.0.0/8" } }, "<a@private.example>")).code).toBe(450);
  });
  test("helo reject_type temp", async () => {
    const t = await TestSession.start(withDns({ plugins: ["helo reject_type temp"], remoteIp: "192.0.2.1" }));
    expect((await t.command("EHLO localhost")).code).toBe(450);
  });
});

describe("earlytalker, badmailfrom and bogus_bounce reject arguments", () => {
  test("earlytalker reject 0 lets a talker in; reject_type temp defers it", async () => {
    const a = await TestSession.start({ plugins: ["earlytalker wait 1 reject 0"], waitForGreeting: false });
    expect((await a.send("EHLO eager\r\n")).map((r) => r.code)).toEqual([220, 250]);
    const b = await TestSession.start({ plugins: ["earlytalker wait 1 reject_type temp"], waitForGreeting: false });
    expect((await b.send("EHLO eager\r\n"))[0]!.code).toBe(450);
  });
  test("badmailfrom reject_type temp", async () => {
    expect((await mailFrom({ plugins: ["badmailfrom reject_type temp"], config: { badmailfrom: "@bad.example" } }, "<x@bad.example>")).code).toBe(450);
  });
  test("bogus_bounce as key/value pairs: reject 1 reject_type temp", async () => {
    const t = await TestSession.start({ plugins: ["bogus_bounce reject 1 reject_type temp"] });
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<>");
    await t.command("RCPT TO:<a@example.org>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("Subject: b\n\nx\n")).code).toBe(452);
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

describe("help, loadcheck, logging/file and whitelist arguments", () => {
  test("help COMMAND FILE pairs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qphelp2-"));
    writeFileSync(join(dir, "rcpt.txt"), "RCPT TO:<address>\n");
    const t = await TestSession.start({ plugins: ["help RCPT rcpt.txt"], configDirs: [dir] });
    expect((await t.command("HELP rcpt")).text).toBe("RCPT TO:<address>");
    expect((await t.command("HELP")).code).toBe(214);
  });
  test("loadcheck cache_time reuses a reading for later connections", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpup-"));
    const prog = join(dir, "uptime");
    writeFileSync(prog, '#!/bin/sh\ncat "$(dirname "$0")/load"\n');
    chmodSync(prog, 0o755);
    const greet = async (port: number): Promise<number> => {
      const c = await RawClient.connect(port);
      const r = await c.reply();
      c.close();
      return r.code;
    };
    for (const [cache, second] of [["60", 220], ["0", 450]] as const) {
      writeFileSync(join(dir, "load"), "load average: 0.10\n");
      const s = await startServer({ plugins: [`loadcheck max_load 5 cache_time ${cache} uptime ${prog}`] });
      try {
        expect(await greet(s.port)).toBe(220);
        writeFileSync(join(dir, "load"), "load average: 9.00\n");
        expect(await greet(s.port)).toBe(second);
      } finally {
        await s.stop();
      }
    }
  });
  test("logging/file tsformat and reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplogf-"));
    mkdirSync(join(dir, "logs"));
    writeFileSync(join(dir, "logs", "qp.log"), "old content\n");
    const t = await TestSession.start({ config: { logging: `logging/file loglevel 6 reopen tsformat [%s] ${dir}/logs/qp.log` } });
    t.qp.log(6, "hello");
    const text = readFileSync(join(dir, "logs", "qp.log"), "utf8");
    expect(text).not.toContain("old content");
    expect(text).toMatch(/^\[\d{10}\] \d+ test hello\n$/);
  });
  test("WHITELISTCLIENT whitelists every client", async () => {
    process.env["WHITELISTCLIENT"] = "1";
    try {
      const t = await TestSession.start({ plugins: ["whitelist"], remoteIp: "203.0.113.9" });
      expect(t.connection.notes("whitelisthost")).toBe(1);
    } finally {
      delete process.env["WHITELISTCLIENT"];
    }
  });
});
