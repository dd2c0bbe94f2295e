/** logging/warn: lines at or below its level, to stderr. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";

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
