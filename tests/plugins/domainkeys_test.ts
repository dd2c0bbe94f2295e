/** domainkeys: the historic name loads, checks nothing, and says so once when it is loaded. */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";
import * as domainkeys from "../../plugins/domainkeys.ts";
import { captureStderr } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("domainkeys", () => {
  test("loads with qpsmtpd's arguments, says once that it checks nothing, and the mail goes on", async () => {
    let t!: TestSession;
    // Loading happens before the session: its line goes to the server's log (stderr here).
    const loaded = await captureStderr(async () => {
      t = await TestSession.start({ plugins: ["domainkeys reject 1", "rcpt_ok"], config: { rcpthosts: "example.org" }, logLevel: 4 });
    });
    expect(loaded.match(/domainkeys: DomainKeys \(RFC 4870\) is historic and is not checked/g)).toHaveLength(1);
    t.mockHook("queue", () => OK);
    await t.command("EHLO client.example");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("DomainKey-Signature: a=rsa-sha1; d=example.net; s=x; b=broken\nFrom: a@example.net\n\nhi\n")).code).toBe(250);
    expect(t.logs.filter((l) => l.plugin === "domainkeys")).toEqual([]); // silent afterwards
    expect(Object.keys(domainkeys).filter((k) => k.startsWith("hook_"))).toEqual([]);
  });
});

describe("domainkeys arguments", () => {
  test("qpsmtpd's warn_only is accepted; a misspelt key stops the load, naming the line and the word", async () => {
    await TestSession.start({ plugins: ["domainkeys reject 0 reject_type temp warn_only 1"] });
    await expectUnknownArgument("domainkeys warnonly 1", "warnonly");
  });
});
