/** hosts_allow (through a real listener) and whitelist. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { RawClient } from "../e2e/helpers.ts";
import { startServer } from "../helpers/server.ts";

describe("hosts_allow", () => {
  test("the first matching line decides before any SMTP", async () => {
    for (const [rule, code, text] of [
      ["127.0.0.0/8 DENY You are not welcome", 550, "You are not welcome"],
      ["127.0.0.1/32 DENYSOFT", 451, "Sorry, try again later"],
      ["10.0.0.0/8 DENY not you", 220, undefined],
      ["::/0 DENY v6 only", 220, undefined],
    ] as const) {
      const s = await startServer({ plugins: ["hosts_allow"], config: { hosts_allow: rule } });
      try {
        const c = await RawClient.connect(s.port);
        const r = await c.reply();
        expect(r.code).toBe(code);
        if (text) expect(r.text).toBe(text);
        c.close();
      } finally {
        await s.stop();
      }
    }
  });
});

describe("whitelist", () => {
  test("hosts, HELO names, senders and recipients get their notes; no relaying follows", async () => {
    const t = await TestSession.start({
      plugins: ["whitelist", "rcpt_ok"],
      remoteIp: "192.0.2.5",
      config: { whitelisthosts: "192.0.2.", whitelisthelo: "friend.example", whitelistsenders: ["@partner.example"], whitelistrcpt: "vip@example.org", rcpthosts: "example.org" },
    });
    expect(t.connection.notes("whitelisthost")).toBe(1);
    await t.command("EHLO friend.example");
    expect(t.connection.notes("whitelisthelo")).toBe(1);
    await t.command("MAIL FROM:<anyone@partner.example>");
    expect(t.transaction.notes("whitelistsender")).toBe(1);
    expect((await t.command("RCPT TO:<vip@example.org>")).code).toBe(250);
    expect(t.transaction.notes("whitelistrcpt")).toBe(1);
    expect((await t.command("RCPT TO:<victim@evil.test>")).code).toBe(550);
  });
});
