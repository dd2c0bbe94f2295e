/** naughty, earlytalker, noop_counter, parse_addr_withhelo, random_error, connection_time, help, quit_fortune. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import type { Hooks } from "qpsmtpd";

describe("naughty", () => {
  const hook_connect: Hooks["connect"] = function () {
    this.store_deferred_reject("you are listed");
    return DECLINED;
  };
  const deferring = { deferrer: { hook_connect } };
  test("rejects at rcpt by default, with disconnect", async () => {
    const t = await TestSession.start({ modules: deferring, plugins: ["deferrer", "naughty"] });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const r = await t.command("RCPT TO:<b@example.org>");
    expect([r.code, r.text]).toEqual([550, "(deferrer) you are listed"]);
    expect(t.closed).toBe(true);
  });
  test("reject mail, reject_type temp", async () => {
    const t = await TestSession.start({ modules: deferring, plugins: ["deferrer", "naughty reject mail reject_type temp"] });
    await t.command("EHLO c");
    const r = await t.command("MAIL FROM:<a@example.net>");
    expect(r.code).toBe(450);
    expect(t.closed).toBe(false);
  });
  test("reject connect refuses the greeting", async () => {
    const t = await TestSession.start({ modules: deferring, plugins: ["deferrer", "naughty reject connect"] });
    expect(t.greeting?.code).toBe(550);
  });
  test("data_post is a safety net when an earlier OK skipped the chosen hook", async () => {
    const t = await TestSession.start({ modules: deferring, plugins: ["deferrer", "naughty reject rcpt"] });
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
    await t.command("DATA");
    expect((await t.data("Subject: x\n\ny\n")).code).toBe(552);
  });
  test("a successful AUTH clears it; relay clients are immune", async () => {
    const t = await TestSession.start({ modules: deferring, plugins: ["deferrer", "auth/auth_flat_file", "naughty reject mail"], config: { flat_auth_pw: "u@example.org:pw" } });
    await t.command("EHLO c");
    await t.command(`AUTH PLAIN ${Buffer.from("\0u@example.org\0pw").toString("base64")}`);
    expect((await t.command("MAIL FROM:<u@example.org>")).code).toBe(250);
    const r = await TestSession.start({ modules: deferring, plugins: ["relay", "deferrer", "naughty reject mail"], config: { relayclients: "127.0.0.1" } });
    await r.command("EHLO c");
    expect((await r.command("MAIL FROM:<u@example.org>")).code).toBe(250);
  });
});

describe("earlytalker", () => {
  test("a quiet client is greeted after the wait", async () => {
    const started = Date.now();
    const t = await TestSession.start({ plugins: ["earlytalker wait 0.2"] });
    expect(t.greeting?.code).toBe(220);
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
  });
  test("a client that talks first is refused", async () => {
    const t = await TestSession.start({ plugins: ["earlytalker wait 1"], waitForGreeting: false });
    // The session is holding its greeting; send before it arrives.
    expect(t.greeting).toBeUndefined();
    const r = await t.send("EHLO eager\r\n");
    expect(r[0]!.code).toBe(550);
    expect(r[0]!.text).toBe("Connecting host started transmitting before SMTP greeting");
    expect(t.connection.notes("earlytalker")).toBe(1);
  }, 10000);
  test("defer-reject greets, then refuses MAIL", async () => {
    const t = await TestSession.start({ plugins: ["earlytalker wait 1 defer-reject 1"], waitForGreeting: false });
    const r = await t.send("EHLO eager\r\n");
    expect(r.map((x) => x.code)).toEqual([220, 250]);
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(550);
  });
  test("check-at DATA refuses a client that sends its message before 354", async () => {
    const t = await TestSession.start({ plugins: ["earlytalker wait 0.3 check-at DATA"] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    const r = await t.send("DATA\r\nSubject: too early\r\n");
    expect(r[0]!.code).toBe(554);
  });
  test("wait does not hold other connections", async () => {
    const slow = TestSession.start({ plugins: ["earlytalker wait 1"] });
    const started = Date.now();
    const fast = await TestSession.start();
    expect((await fast.command("NOOP")).code).toBe(250);
    expect(Date.now() - started).toBeLessThan(500);
    await slow;
  });
});

describe("noop_counter", () => {
  test("disconnects after N NOOPs in a row; other commands reset", async () => {
    const t = await TestSession.start({ plugins: ["noop_counter 3"] });
    expect((await t.send("NOOP\r\nNOOP\r\nHELO c\r\nNOOP\r\nNOOP\r\n")).map((r) => r.code)).toEqual([250, 250, 250, 250, 250]);
    const r = await t.command("NOOP");
    expect([r.code, r.text]).toEqual([500, "Stop wasting my time, too many consecutive NOOPs"]);
    expect(t.closed).toBe(true);
  });
});

describe("parse_addr_withhelo", () => {
  test("no parameters after HELO; parameters after EHLO", async () => {
    const t = await TestSession.start({ plugins: ["parse_addr_withhelo"] });
    await t.command("HELO old.example");
    expect((await t.command("MAIL FROM:<a@example.net> BODY=8BITMIME")).code).toBe(501);
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const e = await TestSession.start({ plugins: ["parse_addr_withhelo"] });
    await e.command("EHLO new.example");
    expect((await e.command("MAIL FROM:<a@example.net> BODY=8BITMIME")).code).toBe(250);
  });
});

describe("random_error", () => {
  test("100 percent always fails, 0 never", async () => {
    const t = await TestSession.start({ plugins: ["random_error 100"] });
    expect([450, 421]).toContain(t.greeting!.code);
    const ok = await TestSession.start({ plugins: ["random_error 0"] });
    expect(ok.greeting!.code).toBe(220);
    expect((await ok.command("HELO c")).code).toBe(250);
  });
});

describe("help and quit_fortune", () => {
  test("help serves files per topic, and not_implemented", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qphelp-"));
    mkdirSync(join(dir, "help"));
    writeFileSync(join(dir, "help", "default"), "Commands: HELO MAIL RCPT DATA\nAsk postmaster\n");
    writeFileSync(join(dir, "help", "mail"), "MAIL FROM:<address>\n");
    const t = await TestSession.start({ plugins: ["help help_dir help"], configDirs: [dir] });
    expect((await t.command("HELP")).lines).toEqual(["Commands: HELO MAIL RCPT DATA", "Ask postmaster"]);
    expect((await t.command("HELP MAIL")).text).toBe("MAIL FROM:<address>");
    expect((await t.command("HELP ../../etc/passwd")).code).toBe(504);
    expect((await t.command("HELP nothing")).code).toBe(504);
    const n = await TestSession.start({ plugins: ["help not_implemented 1"] });
    expect((await n.command("HELP")).code).toBe(502);
  });
  test("quit_fortune answers HELO-only sessions with the fortune", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpfortune-"));
    const prog = join(dir, "fortune");
    writeFileSync(prog, "#!/bin/sh\necho 'A fortune line'\necho 'and a second'\n");
    chmodSync(prog, 0o755);
    const t = await TestSession.start({ plugins: [`quit_fortune ${prog}`] });
    await t.command("HELO c");
    expect((await t.command("QUIT")).lines).toEqual(["A fortune line", "and a second"]);
    expect(t.closed).toBe(true);
    const e = await TestSession.start({ plugins: [`quit_fortune ${prog}`] });
    await e.command("EHLO c");
    expect((await e.command("QUIT")).text).toContain("closing connection");
  });
});

describe("connection_time", () => {
  test("logs the duration at post-connection", async () => {
    const t = await TestSession.start({ plugins: ["connection_time"] });
    await t.command("QUIT");
    await t.done;
    const lines = t.logs.map((l) => `${l.hook} ${l.plugin} ${l.message}`);
    expect(lines.some((l) => /^post-connection connection_time \d+\.\d{3} s$/.test(l))).toBe(true);
  });
});
