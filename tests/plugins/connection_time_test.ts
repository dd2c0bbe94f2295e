/** connection_time: the connection's duration, logged at post-connection. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";

describe("connection_time", () => {
  test("logs the duration at post-connection", async () => {
    const t = await TestSession.start({ plugins: ["connection_time"] });
    await t.command("QUIT");
    await t.done;
    const lines = t.logs.map((l) => `${l.hook} ${l.plugin} ${l.message}`);
    expect(lines.some((l) => /^post-connection connection_time \d+\.\d{3} s$/.test(l))).toBe(true);
  });
});
