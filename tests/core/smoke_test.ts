import { expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";

test("a session greets, accepts a local recipient and queues nothing without a queue plugin", async () => {
  const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { rcpthosts: "example.org", me: "mx.example.org" } });
  expect(t.greeting?.code).toBe(220);
  expect((await t.command("EHLO c.example")).code).toBe(250);
  expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
  expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
  expect((await t.command("RCPT TO:<b@evil.test>")).code).toBe(550);
  expect((await t.command("DATA")).code).toBe(354);
  const r = await t.data("Subject: hi\n\nbody\n");
  expect(r.code).toBe(451);
  expect((await t.command("QUIT")).code).toBe(221);
  expect(t.closed).toBe(true);
});
