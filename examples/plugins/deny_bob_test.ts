// How a plugin author tests a plugin: an in-process session, real hooks, no socket.
// Run it with the binary alone: qpsmtpd test deny_bob_test.ts
import { expect, test, TestSession } from "qpsmtpd/testing";
import * as deny_bob from "./deny_bob.ts";

test("deny_bob refuses bob and leaves everyone else to rcpt_ok", async () => {
  const t = await TestSession.start({
    modules: { deny_bob },
    plugins: ["deny_bob", "rcpt_ok"],
    config: { rcpthosts: "example.org" },
  });
  await t.command("HELO client.example");
  await t.command("MAIL FROM:<alice@example.net>");
  const bob = await t.command("RCPT TO:<Bob@example.org>");
  expect(bob.code).toBe(550);
  expect(bob.text).toBe("no mail for bob");
  expect((await t.command("RCPT TO:<carol@example.org>")).code).toBe(250);
});
