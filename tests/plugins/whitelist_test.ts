/** whitelist: hosts, HELO names, senders, recipients and WHITELISTCLIENT. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument, loadWarnings } from "../helpers/plugin_args.ts";

describe("whitelist", () => {
  test("hosts, HELO names, senders and recipients get their notes; no relaying follows", async () => {
    const t = await TestSession.start({
      plugins: ["whitelist", "rcpt_ok"],
      remoteIp: "192.0.2.5",
      config: {
        whitelisthosts: "192.0.2.",
        whitelisthelo: "friend.example",
        whitelistsenders: ["@partner.example"],
        whitelistrcpt: "vip@example.org",
        rcpthosts: "example.org",
      },
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

describe("whitelist arguments", () => {
  test("WHITELISTCLIENT whitelists every client", async () => {
    process.env["WHITELISTCLIENT"] = "1";
    try {
      const t = await TestSession.start({ plugins: ["whitelist"], remoteIp: "203.0.113.9" });
      expect(t.connection.notes("whitelisthost")).toBe(1);
    } finally {
      delete process.env["WHITELISTCLIENT"];
    }
  });
});

describe("whitelist: unknown arguments", () => {
  test("qpsmtpd's per_recipient and merge load and say once that they have no effect", async () => {
    const { log } = await loadWarnings("whitelist per_recipient 1 merge 0");
    expect(log.match(/whitelist: per_recipient and merge have no effect/g)).toHaveLength(1);
    expect((await loadWarnings("whitelist")).log).not.toContain("no effect");
  });
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("whitelist per_recipent 1", "per_recipent");
  });
});
