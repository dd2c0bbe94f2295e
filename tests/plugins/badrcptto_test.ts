/** badrcptto: addresses, hosts and patterns. */
import { describe, expect, test } from "bun:test";
import { greeted as session } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("badrcptto", () => {
  const config = { badrcptto: ["bad@example.org", "@spamtrap.example", "^abuse-.*@ reason given", "/etc/passwd"] };
  test("address, host and pattern (case-insensitive)", async () => {
    const t = await session({ plugins: ["badrcptto"], config });
    t.mockHook("rcpt", () => undefined);
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<BAD@example.org>")).text).toBe("mail to bad@example.org not accepted here (#5.1.1)");
    expect((await t.command("RCPT TO:<x@spamtrap.example>")).code).toBe(550);
    expect((await t.command("RCPT TO:<Abuse-me@x.example>")).text).toBe("mail to ^abuse-.*@ not accepted here");
    expect((await t.command("RCPT TO:<good@example.org>")).code).toBe(450);
    expect(t.connection.notes("karma")).toBe(-6);
  });
});

describe("badrcptto arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("badrcptto reject 0", "reject");
  });
});
