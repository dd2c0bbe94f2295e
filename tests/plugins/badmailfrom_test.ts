/** badmailfrom: exact addresses, @host, patterns, reject 0/naughty and reject_type. */
import { describe, expect, test } from "bun:test";
import { ehloMailFrom as mailFrom, greeted as session } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("badmailfrom", () => {
  const config = {
    badmailfrom: ["# comment", "spammer@evil.test Go away", "@bad.example", "^bounce-.*@lists\\.example$ no VERP", "nonsense-without-at"],
  };
  test("exact address, with its reason", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    const r = await t.command("MAIL FROM:<Spammer@EVIL.test>");
    expect([r.code, r.text]).toEqual([550, "Go away"]);
    expect(t.connection.notes("karma")).toBe(-1);
  });
  test("@host matches every sender there, with the default reason", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    const r = await t.command("MAIL FROM:<anyone@bad.example>");
    expect([r.code, r.text]).toEqual([550, "Your envelope sender is in my badmailfrom list"]);
    expect((await t.command("MAIL FROM:<anyone@sub.bad.example>")).code).toBe(250);
  });
  test("regular expressions", async () => {
    const t = await session({ plugins: ["badmailfrom"], config });
    expect((await t.command("MAIL FROM:<bounce-123@lists.example>")).text).toBe("no VERP");
    expect((await t.command("MAIL FROM:<x-bounce-123@lists.example>")).code).toBe(250);
  });
  test("null sender, relay clients and reject 0 pass; reject naughty defers", async () => {
    expect((await (await session({ plugins: ["badmailfrom"], config })).command("MAIL FROM:<>")).code).toBe(250);
    const relay = await session({ plugins: ["relay", "badmailfrom"], config: { ...config, relayclients: "10.0.0.0/8" } }, "10.1.1.1");
    expect((await relay.command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    expect((await (await session({ plugins: ["badmailfrom reject 0"], config })).command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    const n = await session({ plugins: ["badmailfrom reject naughty", "naughty reject rcpt"], config });
    expect((await n.command("MAIL FROM:<spammer@evil.test>")).code).toBe(250);
    expect(n.connection.notes("naughty")).toBe("(badmailfrom) Go away");
    const r = await n.command("RCPT TO:<x@example.org>");
    expect([r.code, r.text]).toEqual([550, "(badmailfrom) Go away"]);
    expect(n.closed).toBe(true);
  });
});

describe("badmailfrom reject arguments", () => {
  test("badmailfrom reject_type temp", async () => {
    expect((await mailFrom({ plugins: ["badmailfrom reject_type temp"], config: { badmailfrom: "@bad.example" } }, "<x@bad.example>")).code)
      .toBe(450);
  });
});

describe("badmailfrom arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("badmailfrom reject_typo 1", "reject_typo");
    await expectUnknownArgument("badmailfrom naughty", "naughty");
  });
});
