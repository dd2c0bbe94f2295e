/** logging/warn: lines at or below its level, to stderr. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";
import { captureStderr, logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("logging/warn", () => {
  test("writes lines at or below its level to stderr, with the connection id", async () => {
    const written: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (written.push(String(s)), true)) as typeof process.stderr.write;
    try {
      const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { logging: "logging/warn LOGINFO", rcpthosts: "example.org" } });
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
    } finally {
      process.stderr.write = orig;
    }
    expect(written.some((l) => / test \(rcpt\) rcpt_ok: fail, evil\.test is not a local domain\n$/.test(l))).toBe(true);
    expect(written.some((l) => l.includes("LOGDEBUG") || / \(rcpt\) rcpt_ok: DENY/.test(l))).toBe(false);
  });
});

describe("logging/warn arguments", () => {
  test("`loglevel L` sets the level as the level alone does", async () => {
    const err = await captureStderr(async () => {
      const t = await logged("logging/warn loglevel LOGINFO");
      t.qp.log(6, "an info line");
      t.qp.log(7, "a debug line");
    });
    expect(err).toContain("an info line");
    expect(err).not.toContain("a debug line");
  });
  test("a misspelt key, or a second level, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("logging/warn levl LOGINFO", "levl");
    await expectUnknownArgument("logging/warn LOGINFO LOGDEBUG", "LOGDEBUG");
  });
});
