/** headers, bogus_bounce, loop, virus/klez_filter. */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

async function send(plugins: string[], message: string, opts: { from?: string; to?: string[] } = {}) {
  const t = await TestSession.start({ plugins });
  t.mockHook("rcpt", () => OK);
  t.mockHook("queue", () => [OK, "queued"]);
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${opts.from ?? "<a@example.net>"}`);
  for (const r of opts.to ?? ["<b@example.org>"]) await t.command(`RCPT TO:${r}`);
  await t.command("DATA");
  return { r: await t.data(message), t };
}

const day = 24 * 3600 * 1000;
const date = (offsetDays: number): string => new Date(Date.now() + offsetDays * day).toUTCString();

describe("headers", () => {
  test("From is required by default", async () => {
    const { r, t } = await send(["headers"], "Subject: no from\n\nbody\n");
    expect([r.code, r.text]).toEqual([552, "We require a valid From header"]);
    expect(t.connection.notes("karma")).toBe(-1);
  });
  test("require lists the fields", async () => {
    expect((await send(["headers require From,Date"], "From: a@example.net\n\nbody\n")).r.text).toBe("We require a valid Date header");
    expect((await send(["headers require From,Date"], `From: a@example.net\nDate: ${date(0)}\n\nbody\n`)).r.code).toBe(250);
  });
  test("singular fields may appear once", async () => {
    const { r } = await send(["headers"], "From: a@example.net\nSubject: one\nSubject: two\n\nbody\n");
    expect(r.text).toBe("Only one Subject header allowed. See RFC 5322, Section 3.6");
  });
  test("past and future bound the Date", async () => {
    expect((await send(["headers past 2"], `From: a@x.example\nDate: ${date(-5)}\n\nb\n`)).r.text).toBe("The Date header is too far in the past");
    expect((await send(["headers future 1"], `From: a@x.example\nDate: ${date(3)}\n\nb\n`)).r.text).toBe("The Date header is too far in the future");
    expect((await send(["headers past 2 future 1"], `From: a@x.example\nDate: ${date(0)}\n\nb\n`)).r.code).toBe(250);
    expect((await send(["headers past 2"], "From: a@x.example\nDate: not a date\n\nb\n")).r.code).toBe(250);
  });
  test("reject 0 only logs; reject_type temp defers", async () => {
    expect((await send(["headers reject 0"], "Subject: x\n\nb\n")).r.code).toBe(250);
    expect((await send(["headers reject_type temp"], "Subject: x\n\nb\n")).r.code).toBe(452);
  });
});

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

describe("loop", () => {
  const received = (n: number): string => "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n".repeat(n);
  test("refuses at the hop limit, counting Delivered-To too", async () => {
    expect((await send(["loop 5"], `${received(4)}Subject: ok\n\nb\n`)).r.code).toBe(250);
    const r = (await send(["loop 5"], `${received(3)}Delivered-To: a@example.org\nDelivered-To: b@example.org\nSubject: x\n\nb\n`)).r;
    expect([r.code, r.text]).toEqual([552, "Too many hops. This message is looping. (#5.4.6)"]);
    expect((await send(["loop"], `${received(99)}Subject: x\n\nb\n`)).r.code).toBe(250);
    expect((await send(["loop"], `${received(100)}Subject: x\n\nb\n`)).r.code).toBe(552);
  });
});

describe("virus/klez_filter", () => {
  const klez = "Content-type: application/octet-stream\n\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAA\n";
  const pad = (n: number): string => `${"z".repeat(75)}\n`.repeat(Math.ceil(n / 76));
  test("the signature in a large message is refused", async () => {
    const r = (await send(["virus/klez_filter"], `Subject: x\n\n${klez}${pad(61000)}`)).r;
    expect([r.code, r.text]).toEqual([552, "Klez Virus Detected"]);
  });
  test("small messages and signatures past line 40 pass", async () => {
    expect((await send(["virus/klez_filter"], `Subject: x\n\n${klez}`)).r.code).toBe(250);
    expect((await send(["virus/klez_filter"], `Subject: x\n\n${"line\n".repeat(45)}${klez}${pad(61000)}`)).r.code).toBe(250);
  });
});
