/** parse_addr_withhelo: MAIL parameters only after EHLO. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

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

describe("parse_addr_withhelo arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("parse_addr_withhelo strict 1", "strict");
  });
});
