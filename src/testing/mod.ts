/**
 * `"qpsmtpd/testing"`: what a plugin's tests need. `TestSession` runs a real session in the
 * process (no socket), `FakeClock` moves time by hand, `ZoneResolver` answers DNS from a map,
 * and `describe`/`test`/`expect` are run by `qpsmtpd test FILE...`.
 *
 * ```ts
 * import { expect, test, TestSession } from "qpsmtpd/testing";
 * import * as deny_bob from "./deny_bob.ts";
 *
 * test("deny_bob refuses bob", async () => {
 *   const t = await TestSession.start({ modules: { deny_bob }, plugins: ["deny_bob", "rcpt_ok"], config: { rcpthosts: "example.org" } });
 *   await t.command("HELO client.example");
 *   await t.command("MAIL FROM:<a@example.net>");
 *   expect((await t.command("RCPT TO:<bob@example.org>")).code).toBe(550);
 * });
 * ```
 * @module
 */
export { parseReplies, type TestLogLine, type TestReply, TestSession, type TestSessionOptions } from "./harness.ts";
export type { SetupOptions, TestClock } from "./options.ts";
export { FakeClock } from "./fake_clock.ts";
export { type ZoneEntry, ZoneResolver, type Zones } from "./zone_resolver.ts";
export { afterAll, afterEach, AssertionError, beforeAll, beforeEach, describe, expect, it, type Matchers, test } from "./runner.ts";
