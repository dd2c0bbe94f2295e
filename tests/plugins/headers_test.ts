/** headers: required and singular fields, Date bounds, reject arguments. */
import { describe, expect, test } from "bun:test";
import { sendMessage as send } from "../helpers/sessions.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

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
    expect((await send(["headers past 2"], `From: a@x.example\nDate: ${date(-5)}\n\nb\n`)).r.text).toBe(
      "The Date header is too far in the past",
    );
    expect((await send(["headers future 1"], `From: a@x.example\nDate: ${date(3)}\n\nb\n`)).r.text).toBe(
      "The Date header is too far in the future",
    );
    expect((await send(["headers past 2 future 1"], `From: a@x.example\nDate: ${date(0)}\n\nb\n`)).r.code).toBe(250);
    expect((await send(["headers past 2"], "From: a@x.example\nDate: not a date\n\nb\n")).r.code).toBe(250);
  });
  test("reject 0 only logs; reject_type temp defers", async () => {
    expect((await send(["headers reject 0"], "Subject: x\n\nb\n")).r.code).toBe(250);
    expect((await send(["headers reject_type temp"], "Subject: x\n\nb\n")).r.code).toBe(452);
  });
});

describe("headers: unknown arguments", () => {
  test("a misspelt key, or days that are not a number, stop the load, naming the line and the word", async () => {
    await expectUnknownArgument("headers requre From,Date", "requre");
    await expect(TestSession.start({ plugins: ["headers future two"] })).rejects.toThrow(
      '(override plugins):1: plugin headers failed to load: headers: future is a number of days, not "two"',
    );
  });
});
