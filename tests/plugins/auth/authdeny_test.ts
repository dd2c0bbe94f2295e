/** auth/authdeny: the generic auth hook that declines everything. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("auth/authdeny", () => {
  test("registers the generic auth hook, so all mechanisms are offered, and declines", async () => {
    const t = await TestSession.start({ plugins: ["auth/authdeny"] });
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN CRAM-MD5");
    expect((await t.command(`AUTH PLAIN ${Buffer.from("\0u@x.example\0p").toString("base64")}`)).code).toBe(535);
  });
});

describe("auth/authdeny arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/authdeny loglvl 7", "loglvl");
  });
});
