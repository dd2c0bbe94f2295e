/** bogus_bounce: bounces to more than one recipient, or with a Return-Path. */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { sendMessage as send } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("bogus_bounce", () => {
  test("a bounce to two recipients is logged by default, refused with deny or denysoft", async () => {
    const two = { from: "<>", to: ["<a@example.org>", "<b@example.org>"] };
    expect((await send(["bogus_bounce"], "Subject: bounce\n\nb\n", two)).r.code).toBe(250);
    expect((await send(["bogus_bounce log"], "Subject: bounce\n\nb\n", two)).r.code).toBe(250);
    const deny = (await send(["bogus_bounce deny"], "Subject: bounce\n\nb\n", two)).r;
    expect([deny.code, deny.text]).toEqual([552, "fail, this bounce message does not have 1 recipient"]);
    expect((await send(["bogus_bounce denysoft"], "Subject: bounce\n\nb\n", two)).r.code).toBe(452);
  });
  test("a bounce with a Return-Path is refused; a normal sender is not checked", async () => {
    const r = (await send(["bogus_bounce deny"], "Return-Path: <x@example.net>\nSubject: b\n\nb\n", { from: "<>" })).r;
    expect(r.text).toBe("a bounce return path must be empty (RFC 3834)");
    expect((await send(["bogus_bounce deny"], "Return-Path: <>\nSubject: b\n\nb\n", { from: "<>" })).r.code).toBe(250);
    expect((await send(["bogus_bounce deny"], "Subject: b\n\nb\n", { to: ["<a@x.example>", "<b@x.example>"] })).r.code).toBe(250);
  });
});

describe("bogus_bounce reject arguments", () => {
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

describe("bogus_bounce: unknown arguments", () => {
  test("a misspelt action or key stops the load, naming the word; an action with reject pairs too", async () => {
    await expectUnknownArgument("bogus_bounce dney", "dney");
    await expectUnknownArgument("bogus_bounce rejct 1", "rejct");
    await expectUnknownArgument("bogus_bounce deny denysoft", "denysoft");
    await expect(TestSession.start({ plugins: ["bogus_bounce deny reject_type temp"] })).rejects.toThrow(
      "(override plugins):1: plugin bogus_bounce failed to load: bogus_bounce: give an action (deny) or reject/reject_type, not both",
    );
    // The engine's own keys go with the action: still `deny`.
    const two = { from: "<>", to: ["<a@example.org>", "<b@example.org>"] };
    expect((await send(["bogus_bounce DENY loglevel 7"], "Subject: bounce\n\nb\n", two)).r.code).toBe(552);
  });
});
