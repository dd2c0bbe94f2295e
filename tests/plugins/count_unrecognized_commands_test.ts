/** count_unrecognized_commands: disconnects after N unrecognized commands. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("count_unrecognized_commands", () => {
  test("disconnects at the limit with 521", async () => {
    const t = await TestSession.start({ plugins: ["count_unrecognized_commands 3"] });
    const r = await t.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([500, 500, 521]);
    expect(r[2]!.text).toBe("Closing connection, 3 unrecognized commands.  Perhaps you should read RFC 2821?");
    expect(t.closed).toBe(true);
  });
  test("defaults to 4", async () => {
    const t = await TestSession.start({ plugins: ["count_unrecognized_commands"] });
    const r = await t.send("A1\r\nA2\r\nA3\r\nA4\r\n");
    expect(r.map((x) => x.code)).toEqual([500, 500, 500, 521]);
  });
});

describe("count_unrecognized_commands arguments", () => {
  test("a word that is not the limit stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("count_unrecognized_commands limt 4", "limt");
    await expectUnknownArgument("count_unrecognized_commands 4 5", "5");
  });
});
