/** rcpt_regexp: the first matching line decides. */
import { describe, expect, test } from "bun:test";
import { greeted as session } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("rcpt_regexp", () => {
  test("first matching line decides, with its code and text", async () => {
    const t = await session({
      plugins: ["rcpt_regexp"],
      config: {
        rcpt_regexp: ["/^sales-/i DENY no more sales", "info@example.org OK", "/^temp/ DENYSOFT later", "/(/ DENY broken pattern"],
      },
    });
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<Sales-x@example.org>")).text).toBe("no more sales");
    expect((await t.command("RCPT TO:<info@example.org>")).code).toBe(250);
    expect((await t.command("RCPT TO:<temp1@example.org>")).code).toBe(450);
    expect((await t.command("RCPT TO:<other@example.org>")).text).toBe("No plugin decided if relaying is allowed");
  });
});

describe("rcpt_regexp arguments", () => {
  test("it takes none (the patterns are a config file): a word stops the load, naming it", async () => {
    await expectUnknownArgument("rcpt_regexp rcpt_regexp /etc/qpsmtpd/rcpt_regexp", "rcpt_regexp");
  });
});
