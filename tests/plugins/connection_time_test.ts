/** connection_time: the connection's duration, logged at post-connection. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("connection_time", () => {
  test("logs the duration at post-connection", async () => {
    const t = await TestSession.start({ plugins: ["connection_time"] });
    await t.command("QUIT");
    await t.done;
    const lines = t.logs.map((l) => `${l.hook} ${l.plugin} ${l.message}`);
    expect(lines.some((l) => /^post-connection connection_time \d+\.\d{3} s$/.test(l))).toBe(true);
  });
});

describe("connection_time arguments", () => {
  test("qpsmtpd's older form, the level alone, is the level of the line", async () => {
    const t = await TestSession.start({ plugins: ["connection_time LOGDEBUG"] });
    await t.command("QUIT");
    await t.done;
    const line = t.logs.filter((l) => l.plugin === "connection_time" && / s$/.test(l.message));
    expect(line.map((l) => l.level)).toEqual([7]); // LOGDEBUG, not the default LOGINFO
  });
  test("a misspelt key, or a word that is not a level, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("connection_time loglevl +1", "loglevl");
    await expectUnknownArgument("connection_time LOGINFO LOGDEBUG", "LOGDEBUG");
  });
});
