/** dont_require_anglebrackets: MAIL FROM and RCPT TO without <>. */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("dont_require_anglebrackets", () => {
  test("adds the brackets, then the address is parsed as usual", async () => {
    const t = await TestSession.start({ plugins: ["dont_require_anglebrackets"] });
    t.mockHook("rcpt", () => OK);
    await t.command("HELO c");
    expect((await t.command("MAIL FROM:a@example.net")).text).toBe("<a@example.net>, sender OK - how exciting to get mail from you!");
    expect((await t.command("RCPT TO:b@example.org")).code).toBe(250);
    expect((await t.command("RCPT TO:not an address")).code).toBe(501);
  });
});

describe("dont_require_anglebrackets arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("dont_require_anglebrackets loglvl 7", "loglvl");
  });
});
