/** badmailfromto: sender and recipient pairs. */
import { describe, expect, test } from "bun:test";
import { greeted as session } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("badmailfromto", () => {
  test("refuses only the listed pair", async () => {
    const t = await session({ plugins: ["badmailfromto"], config: { badmailfromto: "ex@example.net boss@example.org" } });
    await t.command("MAIL FROM:<ex@example.net>");
    expect((await t.command("RCPT TO:<boss@example.org>")).code).toBe(550);
    expect((await t.command("RCPT TO:<other@example.org>")).code).toBe(450);
    await t.command("MAIL FROM:<friend@example.net>");
    expect((await t.command("RCPT TO:<boss@example.org>")).code).toBe(450);
  });
});

describe("badmailfromto arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("badmailfromto reject_type temp", "reject_type");
  });
});
