/** noop_counter: too many NOOPs in a row. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("noop_counter", () => {
  test("disconnects after N NOOPs in a row; other commands reset", async () => {
    const t = await TestSession.start({ plugins: ["noop_counter 3"] });
    expect((await t.send("NOOP\r\nNOOP\r\nHELO c\r\nNOOP\r\nNOOP\r\n")).map((r) => r.code)).toEqual([250, 250, 250, 250, 250]);
    const r = await t.command("NOOP");
    expect([r.code, r.text]).toEqual([500, "Stop wasting my time, too many consecutive NOOPs"]);
    expect(t.closed).toBe(true);
  });
});

describe("noop_counter arguments", () => {
  test("no limit, or qpsmtpd's 0, is 3", async () => {
    for (const line of ["noop_counter", "noop_counter 0"]) {
      const t = await TestSession.start({ plugins: [line] });
      expect((await t.send("NOOP\r\nNOOP\r\nNOOP\r\n")).map((r) => r.code)).toEqual([250, 250, 500]);
    }
  });
  test("a word that is not the limit stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("noop_counter max 3", "max");
  });
});
