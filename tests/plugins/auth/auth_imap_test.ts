/**
 * auth/auth_imap against a real Dovecot imapd (Debian's dovecot-imapd) run privately: LOGIN in
 * clear, over IMAPS and after STARTTLS (with the certificate checked), quoting and literals,
 * credentials that cannot be handed on, a slow server under 100 concurrent attempts, and the
 * failure modes (down, silent, hanging up, NO with a temporary code, BAD, LOGINDISABLED, a
 * response injected before the STARTTLS handshake: fault-injecting fake peers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type * as net from "node:net";
import { TestSession } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { authLogin, authPlain, authSession, logsMention, tryPlain } from "../../helpers/auth.ts";
import { type Dovecot, startDovecot } from "../../helpers/dovecot.ts";
import { fakePeer, lineScript, refusingPort } from "../../helpers/fake_peers.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const USERS = [
  { name: "alice", password: "s3cret-pw" },
  { name: "quote", password: 'pa "s\\ w' },
  { name: "umlaut", password: "pässwörd" },
  { name: "odd", password: "\uFFFD" },
];

let dovecot: Dovecot;
beforeAll(async () => {
  dovecot = await startDovecot({ users: USERS });
});
afterAll(async () => {
  await dovecot?.stop();
});

const plain = () => `auth/auth_imap 127.0.0.1 ${dovecot.imapPort}`;

describe("auth/auth_imap with Dovecot", () => {
  test("LOGIN in clear with the right password: 235, the password never logged, Dovecot told the client's address", async () => {
    const { code, t } = await tryPlain(plain(), "alice", "s3cret-pw", { remoteIp: "192.0.2.55" });
    expect(code).toBe(235);
    expect(logsMention(t, "s3cret-pw")).toBe(false);
    expect(dovecot.log()).toMatch(/Login: user=<alice>.*rip=192\.0\.2\.55/);
  });

  test("a wrong password and an unknown user: 535", async () => {
    const wrong = await tryPlain(plain(), "alice", "s3cret-pX", { remoteIp: "192.0.2.101" });
    expect(wrong.code).toBe(535);
    expect(logsMention(wrong.t, "s3cret-pX")).toBe(false);
    expect((await tryPlain(plain(), "mallory", "x", { remoteIp: "192.0.2.102" })).code).toBe(535);
  });

  test("quotes, backslashes and spaces go quoted, 8-bit text as a literal", async () => {
    expect((await tryPlain(plain(), "quote", 'pa "s\\ w')).code).toBe(235);
    const t = await authSession(plain());
    expect(await authLogin(t, "umlaut", "pässwörd")).toBe(235);
    expect((await tryPlain(plain(), "umlaut", "passwort", { remoteIp: "192.0.2.103" })).code).toBe(535);
  });

  test("IMAPS with the server's certificate trusted: 235", async () => {
    const { code, t } = await tryPlain(
      `auth/auth_imap 127.0.0.1 ${dovecot.imapsPort} tls imaps tls_ca ${dovecot.caFile}`,
      "alice",
      "s3cret-pw",
    );
    expect(code).toBe(235);
    expect(t.logs.some((l) => l.message.includes("imaps://"))).toBe(true);
  });

  test("STARTTLS with the certificate checked: 235", async () => {
    const { code, t } = await tryPlain(
      `auth/auth_imap 127.0.0.1 ${dovecot.imapPort} tls starttls tls_ca ${dovecot.caFile}`,
      "alice",
      "s3cret-pw",
    );
    expect(code).toBe(235);
    expect(t.logs.some((l) => l.message.includes("STARTTLS"))).toBe(true);
  });

  test("an untrusted certificate (IMAPS or STARTTLS): 454, the password not sent", async () => {
    for (const line of [`127.0.0.1 ${dovecot.imapsPort} tls imaps`, `127.0.0.1 ${dovecot.imapPort} tls starttls`]) {
      const { code, t } = await tryPlain(`auth/auth_imap ${line}`, "alice", "s3cret-pw");
      expect(code).toBe(454);
      expect(t.logs.some((l) => /certificate/i.test(l.message))).toBe(true);
    }
  });

  test("a NUL or non-UTF-8 bytes in the password: 535 without asking; U+FFFD is not taken for them", async () => {
    const t = await authSession(plain());
    expect(await authLogin(t, "alice", Buffer.from("s3cret-pw\0x"))).toBe(535);
    expect((await tryPlain(plain(), "odd", Buffer.from([0xff]))).code).toBe(501); // the core refuses non-UTF-8
  });

  test("check() is quiet when the server answers (in clear and with STARTTLS), and warns when it is down", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plain()] }))).toEqual([]);
    const starttls = `auth/auth_imap 127.0.0.1 ${dovecot.imapPort} tls starttls tls_ca ${dovecot.caFile}`;
    expect(await pluginChecks(await testRegistry({ plugins: [starttls] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`auth/auth_imap 127.0.0.1 ${await refusingPort()}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toContain("does not answer");
  });
});

describe("auth/auth_imap with a slow server", () => {
  let slow: Dovecot;
  beforeAll(async () => {
    slow = await startDovecot({ users: USERS, authFailureDelay: 2 }); // each failed login answered 2 s late
  });
  afterAll(async () => {
    await slow?.stop();
  });

  test("100 concurrent wrong passwords: a right one is answered at once, each wrong one gets 535", async () => {
    const plugin = `auth/auth_imap 127.0.0.1 ${slow.imapPort}`;
    const sessions = await Promise.all(Array.from({ length: 100 }, (_, i) => authSession(plugin, { remoteIp: `10.0.0.${i + 1}` })));
    let settled = 0;
    const wrong = sessions.map((t, i) => authPlain(t, "alice", `wrong-${i}`).finally(() => settled++));
    await new Promise((r) => setTimeout(r, 300)); // let the 100 reach the server first
    const good = await tryPlain(plugin, "alice", "s3cret-pw", { remoteIp: "192.0.2.9" });
    expect(good.code).toBe(235);
    expect(settled).toBe(0);
    expect((await Promise.all(wrong)).filter((c) => c === 535)).toHaveLength(100);
  }, 30_000);
});

const GREETING = "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] fake ready\r\n";

describe("auth/auth_imap failure modes", () => {
  test("the server down: 454", async () => {
    expect((await tryPlain(`auth/auth_imap 127.0.0.1 ${await refusingPort()}`, "alice", "x")).code).toBe(454);
  });

  test("a server that accepts and never answers: 454 at imap_timeout", async () => {
    const peer = await fakePeer();
    try {
      const { code, t } = await tryPlain(`auth/auth_imap 127.0.0.1 ${peer.port} imap_timeout 0.3`, "alice", "x");
      expect(code).toBe(454);
      expect(t.logs.some((l) => l.message.includes("timed out"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("a server that hangs up after LOGIN: 454, never 235", async () => {
    const peer = await fakePeer(lineScript(GREETING, []));
    try {
      expect((await tryPlain(`auth/auth_imap 127.0.0.1 ${peer.port}`, "alice", "x")).code).toBe(454);
      expect(peer.received[0]).toContain("a1 LOGIN");
    } finally {
      await peer.close();
    }
  });

  test("NO with a temporary response code: 454; with AUTHENTICATIONFAILED: 535; BAD: 454", async () => {
    const cases: Array<[string, number]> = [
      ["a1 NO [UNAVAILABLE] backend down\r\n", 454],
      ["a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", 535],
      ["a1 BAD what\r\n", 454],
    ];
    for (const [answer, want] of cases) {
      const peer = await fakePeer(lineScript(GREETING, [answer]));
      try {
        expect((await tryPlain(`auth/auth_imap 127.0.0.1 ${peer.port}`, "alice", "x")).code).toBe(want);
      } finally {
        await peer.close();
      }
    }
  });

  test("LOGINDISABLED in clear: 454 and the password is never sent", async () => {
    const peer = await fakePeer(lineScript("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake\r\n", ["a1 OK\r\n"]));
    try {
      expect((await tryPlain(`auth/auth_imap 127.0.0.1 ${peer.port}`, "alice", "s3cret-pw")).code).toBe(454);
      expect(peer.received[0] ?? "").not.toContain("s3cret-pw");
    } finally {
      await peer.close();
    }
  });

  test("a response injected with the STARTTLS answer is not believed: 454, the password never sent", async () => {
    const injector = (s: net.Socket) => {
      s.write(GREETING);
      s.once("data", () => s.write("a0 OK Begin TLS now\r\na1 OK LOGIN completed\r\n"));
    };
    const peer = await fakePeer(injector);
    try {
      const { code, t } = await tryPlain(`auth/auth_imap 127.0.0.1 ${peer.port} tls starttls tls_verify 0`, "alice", "s3cret-pw");
      expect(code).toBe(454);
      expect(t.logs.some((l) => l.message.includes("after its STARTTLS answer"))).toBe(true);
      expect(peer.received[0]).not.toContain("s3cret-pw");
    } finally {
      await peer.close();
    }
  });

  test("bad arguments stop start-up", async () => {
    for (
      const line of [
        "auth/auth_imap 127.0.0.1 143 tls maybe",
        "auth/auth_imap h 143 tls",
        "auth/auth_imap h 143 tsl none",
        "auth/auth_imap h;rm 143",
      ]
    ) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("auth/auth_imap arguments", () => {
  test("a misspelt key stops the load, naming the word, after HOST PORT or in HOST's place", async () => {
    await expectUnknownArgument("auth/auth_imap 127.0.0.1 143 imap_timout 5", "imap_timout");
    await expectUnknownArgument("auth/auth_imap imap.example.org imap_timout 5", "imap_timout");
    await expectUnknownArgument("auth/auth_imap imap_timout 5", "imap_timout"); // a host name has no `_`
    await expectUnknownArgument("auth/auth_imap 127.0.0.1 143 993", "993");
  });
});
