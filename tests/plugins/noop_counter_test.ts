/** noop_counter: too many NOOPs in a row. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";

describe("noop_counter", () => {
  test("disconnects after N NOOPs in a row; other commands reset", async () => {
    const t = await TestSession.start({ plugins: ["noop_counter 3"] });
    expect((await t.send("NOOP\r\nNOOP\r\nHELO c\r\nNOOP\r\nNOOP\r\n")).map((r) => r.code)).toEqual([250, 250, 250, 250, 250]);
    const r = await t.command("NOOP");
    expect([r.code, r.text]).toEqual([500, "Stop wasting my time, too many consecutive NOOPs"]);
    expect(t.closed).toBe(true);
  });
});
