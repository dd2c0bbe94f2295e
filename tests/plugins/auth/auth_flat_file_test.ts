/** auth/auth_flat_file: PLAIN, LOGIN and CRAM-MD5 against flat_auth_pw. */
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { LOGINFO, OK } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const config = { flat_auth_pw: ["# users", "u@example.org:secret", "other@example.org:pw2"], me: "mx.example.org" };
/** A second auth plugin that accepts anyone: it answers only when auth_flat_file declines. */
const anyone = { anyone: { hook_auth_plain: () => OK } };

describe("auth/auth_flat_file", () => {
  test("PLAIN, LOGIN and CRAM-MD5 succeed with the file's password", async () => {
    const t = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN CRAM-MD5");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0secret")}`)).code).toBe(235);
    expect(t.qp.auth_user).toBe("u@example.org");

    const l = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    await l.command("EHLO c");
    await l.command("AUTH LOGIN");
    await l.command(b64("other@example.org"));
    expect((await l.command(b64("pw2"))).code).toBe(235);
    expect(l.qp.auth_user).toBe("other@example.org");

    const c = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    await c.command("EHLO c");
    const ch = await c.command("AUTH CRAM-MD5");
    expect(ch.code).toBe(334);
    const ticket = Buffer.from(ch.text, "base64").toString();
    const digest = createHmac("md5", "secret").update(ticket).digest("hex");
    expect((await c.command(b64(`u@example.org ${digest}`))).code).toBe(235);
  });

  test("the user is matched without regard to case", async () => {
    const t = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${b64("\0U@Example.ORG\0secret")}`)).code).toBe(235);
  });

  test("a wrong password is DENY: 535, and the next auth plugin is not asked", async () => {
    const t = await TestSession.start({ plugins: ["auth/auth_flat_file", "anyone"], modules: anyone, config });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0wrong")}`)).code).toBe(535);
    expect(t.qp.authenticated()).toBe(false);
    const c = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    await c.command("EHLO c");
    const ticket = Buffer.from((await c.command("AUTH CRAM-MD5")).text, "base64").toString();
    const digest = createHmac("md5", "wrong").update(ticket).digest("hex");
    expect((await c.command(b64(`u@example.org ${digest}`))).code).toBe(535);
  });

  test("an unknown user, or a name that is not an e-mail address, is DECLINED for the next plugin", async () => {
    const alone = await TestSession.start({ plugins: ["auth/auth_flat_file"], config });
    await alone.command("EHLO c");
    expect((await alone.command(`AUTH PLAIN ${b64("\0nobody@example.org\0secret")}`)).code).toBe(535);
    expect(
      alone.logs.some((l) =>
        l.plugin === "auth::auth_flat_file" && l.level === LOGINFO && l.message === "fail, no such user nobody@example.org"
      ),
    ).toBe(true);

    const next = await TestSession.start({ plugins: ["auth/auth_flat_file", "anyone"], modules: anyone, config });
    await next.command("EHLO c");
    expect((await next.command(`AUTH PLAIN ${b64("\0nobody@example.org\0x")}`)).code).toBe(235);
    const bare = await TestSession.start({ plugins: ["auth/auth_flat_file", "anyone"], modules: anyone, config });
    await bare.command("EHLO c");
    expect((await bare.command(`AUTH PLAIN ${b64("\0u\0secret")}`)).code).toBe(235);
    expect(bare.logs.some((l) => l.message === "fail, u is not a full e-mail address")).toBe(true);
  });
});

describe("auth/auth_flat_file arguments", () => {
  test("it takes none: a word (the config file's name, say) stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/auth_flat_file flat_auth_pw /etc/passwd", "flat_auth_pw");
  });
});
