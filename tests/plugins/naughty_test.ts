/** naughty: deferred rejections, where and how they are carried out. */
import { describe, expect, test } from "bun:test";
import { DECLINED, OK } from "qpsmtpd";
import type { Hooks } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

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
    const t = await TestSession.start({
      modules: deferring,
      plugins: ["deferrer", "auth/auth_flat_file", "naughty reject mail"],
      config: { flat_auth_pw: "u@example.org:pw" },
    });
    await t.command("EHLO c");
    await t.command(`AUTH PLAIN ${Buffer.from("\0u@example.org\0pw").toString("base64")}`);
    expect((await t.command("MAIL FROM:<u@example.org>")).code).toBe(250);
    const r = await TestSession.start({
      modules: deferring,
      plugins: ["relay", "deferrer", "naughty reject mail"],
      config: { relayclients: "127.0.0.1" },
    });
    await r.command("EHLO c");
    expect((await r.command("MAIL FROM:<u@example.org>")).code).toBe(250);
  });
});

describe("naughty: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("naughty rejcet data", "rejcet");
  });
});
