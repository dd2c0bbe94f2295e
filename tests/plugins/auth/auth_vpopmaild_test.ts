/**
 * auth/auth_vpopmaild against a stand-in (tests/helpers/vpopmaild.ts): vpopmail is not in
 * Debian nor on npm, so the peer follows vpopmaild's documented line protocol. Also: command
 * injection through the password, credentials that cannot be sent, 100 concurrent attempts
 * against a slow daemon, and the failure modes (down, silent, hanging up, odd answers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { authLogin, authSession, logsMention, tryPlain } from "../../helpers/auth.ts";
import { fakePeer, lineScript, refusingPort } from "../../helpers/fake_peers.ts";
import { startVpopmaild, type Vpopmaild } from "../../helpers/vpopmaild.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const USERS = { "alice@example.org": "s3cret-pw", "slow@example.org": "slow-pw" };

let daemon: Vpopmaild;
beforeAll(async () => {
  daemon = await startVpopmaild(USERS, 2000);
});
afterAll(async () => {
  await daemon?.close();
});

const plugin = () => `auth/auth_vpopmaild host 127.0.0.1 port ${daemon.port}`;

describe("auth/auth_vpopmaild", () => {
  test("login user password: +OK → 235; the password and the details vpopmaild sends back are never logged", async () => {
    const before = daemon.lines.length;
    const { code, t } = await tryPlain(plugin(), "alice@example.org", "s3cret-pw");
    expect(code).toBe(235);
    expect(daemon.lines[before]?.[0]).toBe("login alice@example.org s3cret-pw");
    expect(logsMention(t, "s3cret-pw")).toBe(false);
  });

  test("-ERR → 535, for a wrong password and an unknown user", async () => {
    const wrong = await tryPlain(plugin(), "alice@example.org", "s3cret-pX");
    expect(wrong.code).toBe(535);
    expect(logsMention(wrong.t, "s3cret-pX")).toBe(false);
    expect((await tryPlain(plugin(), "mallory@example.org", "s3cret-pw")).code).toBe(535);
  });

  test("a password that would add a command or a word is never sent: 535", async () => {
    const before = daemon.lines.length;
    const t = await authSession(plugin());
    // Sent as is, the second line would log alice in whatever the first said.
    expect(await authLogin(t, "mallory@example.org", "x\r\nlogin alice@example.org s3cret-pw")).toBe(535);
    expect(await authLogin(t, "alice@example.org", "s3cret-pw compact")).toBe(535);
    expect((await tryPlain(plugin(), "alice@example.org s3cret-pw", "x")).code).toBe(535);
    expect(daemon.lines.length).toBe(before);
  });

  test("a NUL, non-UTF-8 bytes or an empty password: 535 without asking", async () => {
    const before = daemon.lines.length;
    expect((await tryPlain(plugin(), "alice@example.org", Buffer.from([0x73, 0xff]))).code).toBe(501); // the core refuses non-UTF-8
    const t = await authSession(plugin());
    expect(await authLogin(t, "alice@example.org", Buffer.from("s3cret-pw\0"))).toBe(535);
    expect(await authLogin(t, "alice@example.org", "")).toBe(535);
    expect(daemon.lines.length).toBe(before);
  });

  test("100 concurrent attempts for a user vpopmaild answers 2 s late: another user is served at once", async () => {
    let settled = 0;
    const slow = Array.from(
      { length: 100 },
      (_, i) => tryPlain(plugin(), "slow@example.org", i < 50 ? "slow-pw" : `wrong-${i}`).finally(() => settled++),
    );
    await new Promise((r) => setTimeout(r, 200)); // let the 100 reach the daemon first
    expect((await tryPlain(plugin(), "alice@example.org", "s3cret-pw")).code).toBe(235);
    expect(settled).toBe(0);
    const codes = (await Promise.all(slow)).map((s) => s.code);
    expect(codes.slice(0, 50).every((c) => c === 235)).toBe(true);
    expect(codes.slice(50).every((c) => c === 535)).toBe(true);
  }, 30_000);

  test("check() is quiet when vpopmaild greets, and warns when it is down", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plugin()] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`auth/auth_vpopmaild host 127.0.0.1 port ${await refusingPort()}`] }));
    expect(down[0]).toContain("does not answer");
  });
});

describe("auth/auth_vpopmaild failure modes", () => {
  test("vpopmaild down: 454", async () => {
    const { code, t } = await tryPlain(`auth/auth_vpopmaild host 127.0.0.1 port ${await refusingPort()}`, "alice@example.org", "x");
    expect(code).toBe(454);
    expect(t.replies.at(-1)?.text).toContain("Temporary authentication failure");
  });

  test("a daemon that accepts and never answers: 454 at vpopmaild_timeout", async () => {
    const peer = await fakePeer();
    try {
      expect((await tryPlain(`auth/auth_vpopmaild host 127.0.0.1 port ${peer.port} vpopmaild_timeout 0.3`, "alice@example.org", "x")).code)
        .toBe(454);
    } finally {
      await peer.close();
    }
  });

  test("hanging up after the login line, a greeting other than +OK, an answer that is neither: 454, never 235", async () => {
    for (const script of [lineScript("+OK \r\n", []), lineScript("-ERR 0400 busy\r\n", []), lineScript("+OK \r\n", ["maybe\r\n"])]) {
      const peer = await fakePeer(script);
      try {
        expect((await tryPlain(`auth/auth_vpopmaild host 127.0.0.1 port ${peer.port}`, "alice@example.org", "x")).code).toBe(454);
      } finally {
        await peer.close();
      }
    }
  });

  test("bad arguments stop start-up", async () => {
    for (
      const line of [
        "auth/auth_vpopmaild host",
        "auth/auth_vpopmaild port 99999",
        "auth/auth_vpopmaild hots x",
        "auth/auth_vpopmaild vpopmaild_timeout -1",
      ]
    ) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("auth/auth_vpopmaild arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/auth_vpopmaild host 127.0.0.1 prot 89", "prot");
  });
});
