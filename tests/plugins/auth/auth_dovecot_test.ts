/**
 * auth/auth_dovecot against a real Dovecot auth service (Debian's dovecot-core) run privately,
 * over TCP and its unix socket: PLAIN and LOGIN, wrong passwords, credentials that cannot be
 * handed on (NUL, non-UTF-8), a slow Dovecot under 100 concurrent attempts, and the failure
 * modes (down, silent, a temporary FAIL, hanging up mid-exchange: fault-injecting fake peers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type * as net from "node:net";
import { TestSession } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { authLogin, authPlain, authSession, logsMention, tryPlain } from "../../helpers/auth.ts";
import { type Dovecot, startDovecot } from "../../helpers/dovecot.ts";
import { fakePeer, refusingPort } from "../../helpers/fake_peers.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const USERS = [
  { name: "alice", password: "s3cret-pw" },
  // Its password is U+FFFD itself: a client sending a non-UTF-8 byte must not get in as odd.
  { name: "odd", password: "\uFFFD" },
];

let dovecot: Dovecot;
beforeAll(async () => {
  dovecot = await startDovecot({ users: USERS });
});
afterAll(async () => {
  await dovecot?.stop();
});

const tcp = () => `auth/auth_dovecot host 127.0.0.1 port ${dovecot.authPort}`;

/** The handshake Dovecot sends, for the fake peers. */
const HANDSHAKE = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tabc\nDONE\n";

/** A fake auth service: handshake, then `onAuth` for the AUTH line. */
function fakeAuth(onAuth: (s: net.Socket) => void): (s: net.Socket) => void {
  return (s) => {
    s.write(HANDSHAKE);
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("AUTH\t")) onAuth(s);
    });
  };
}

describe("auth/auth_dovecot with Dovecot", () => {
  test("AUTH PLAIN with the right password over TCP: 235, the password never logged", async () => {
    const { code, t } = await tryPlain(tcp(), "alice", "s3cret-pw");
    expect(code).toBe(235);
    expect(t.qp.auth_user).toBe("alice");
    expect(logsMention(t, "s3cret-pw")).toBe(false);
  });

  test("AUTH LOGIN goes through Dovecot's LOGIN mechanism, over the unix socket", async () => {
    const t = await authSession(`auth/auth_dovecot socket ${dovecot.authSocket}`);
    expect(await authLogin(t, "alice@example.org", "s3cret-pw")).toBe(235);
    expect(t.logs.some((l) => l.message.includes("(LOGIN)"))).toBe(true);
  });

  test("a wrong password and an unknown user: 535 5.7.8, nothing logged of the password", async () => {
    // Each from its own address: Dovecot delays clients that failed before (its auth penalty).
    const wrong = await tryPlain(tcp(), "alice", "s3cret-pX", { remoteIp: "192.0.2.101" });
    expect(wrong.code).toBe(535);
    expect(logsMention(wrong.t, "s3cret-pX")).toBe(false);
    expect((await tryPlain(tcp(), "mallory", "s3cret-pw", { remoteIp: "192.0.2.102" })).code).toBe(535);
  });

  test("a password with a NUL is refused without asking Dovecot, even one that starts with the right password", async () => {
    const t = await authSession(tcp());
    expect(await authLogin(t, "alice", Buffer.from("s3cret-pw\0anything"))).toBe(535);
    expect(t.logs.some((l) => l.message.includes("NUL"))).toBe(true);
  });

  test("a password with non-UTF-8 bytes is refused (the core, 501); a real U+FFFD is refused by the plugin", async () => {
    expect((await tryPlain(tcp(), "odd", "\uFFFD")).code).toBe(535); // collateral: U+FFFD itself cannot be told apart
    expect((await tryPlain(tcp(), "odd", Buffer.from([0xff]))).code).toBe(501); // the core refuses non-UTF-8
    expect((await tryPlain(tcp(), "alice", Buffer.concat([Buffer.from("s3cret-pw"), Buffer.from([0xc3])]))).code).toBe(501);
  });

  test("check() is quiet when Dovecot answers, and warns when it is down", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [tcp()] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`auth/auth_dovecot socket ${dovecot.dir}/none.sock`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toContain("does not answer");
  });
});

describe("auth/auth_dovecot with a slow Dovecot", () => {
  let slow: Dovecot;
  beforeAll(async () => {
    slow = await startDovecot({ users: USERS, authFailureDelay: 2 }); // each FAIL comes 2 s late
  });
  afterAll(async () => {
    await slow?.stop();
  });

  test("100 concurrent wrong passwords: a right one is answered at once, each wrong one gets 535", async () => {
    const plugin = `auth/auth_dovecot host 127.0.0.1 port ${slow.authPort}`;
    const sessions = await Promise.all(Array.from({ length: 100 }, (_, i) => authSession(plugin, { remoteIp: `10.0.0.${i + 1}` })));
    let settled = 0;
    const wrong = sessions.map((t, i) => authPlain(t, "alice", `wrong-${i}`).finally(() => settled++));
    await new Promise((r) => setTimeout(r, 200)); // let the 100 reach Dovecot first
    const good = await tryPlain(plugin, "alice", "s3cret-pw", { remoteIp: "192.0.2.9" });
    expect(good.code).toBe(235);
    expect(settled).toBe(0); // the slow ones are still waiting: nobody queues behind them
    const codes = await Promise.all(wrong);
    expect(codes.filter((c) => c === 535)).toHaveLength(100);
  }, 30_000);
});

describe("auth/auth_dovecot failure modes", () => {
  test("Dovecot down (refused port, missing socket): 454 4.7.0", async () => {
    const port = await refusingPort();
    const { code, t } = await tryPlain(`auth/auth_dovecot host 127.0.0.1 port ${port}`, "alice", "s3cret-pw");
    expect(code).toBe(454);
    expect(t.replies.at(-1)?.text).toContain("Temporary authentication failure");
    expect((await tryPlain(`auth/auth_dovecot socket ${dovecot.dir}/none.sock`, "alice", "s3cret-pw")).code).toBe(454);
  });

  test("a service that accepts and never answers: 454 at dovecot_timeout, the connection dropped", async () => {
    const peer = await fakePeer();
    try {
      const { code, t } = await tryPlain(`auth/auth_dovecot host 127.0.0.1 port ${peer.port} dovecot_timeout 0.3`, "alice", "s3cret-pw");
      expect(code).toBe(454);
      expect(t.logs.some((l) => l.message.includes("timed out"))).toBe(true);
      while (peer.closed < 1) await new Promise((r) => setTimeout(r, 10));
    } finally {
      await peer.close();
    }
  });

  test("a FAIL marked temp: 454, not 535", async () => {
    const peer = await fakePeer(fakeAuth((s) => s.write("FAIL\t1\ttemp\treason=backend down\n")));
    try {
      expect((await tryPlain(`auth/auth_dovecot host 127.0.0.1 port ${peer.port}`, "alice", "x")).code).toBe(454);
    } finally {
      await peer.close();
    }
  });

  test("a service that hangs up after the AUTH line, or answers nonsense: 454, never 235", async () => {
    for (const onAuth of [(s: net.Socket) => s.destroy(), (s: net.Socket) => s.write("OK\t2\tuser=alice\n")]) {
      const peer = await fakePeer(fakeAuth(onAuth));
      try {
        expect((await tryPlain(`auth/auth_dovecot host 127.0.0.1 port ${peer.port} dovecot_timeout 1`, "alice", "x")).code).toBe(454);
      } finally {
        await peer.close();
      }
    }
  });

  test("bad arguments stop start-up", async () => {
    for (const line of ["auth/auth_dovecot host 127.0.0.1", "auth/auth_dovecot socket /s host h port 1", "auth/auth_dovecot sokcet /s"]) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("auth/auth_dovecot arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/auth_dovecot host 127.0.0.1 prot 12345", "prot");
  });
});
