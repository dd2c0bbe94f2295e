/**
 * queue/lmtp against a real Dovecot LMTP server (Debian's dovecot-lmtpd) run privately: TCP and
 * unix socket delivery, per-recipient replies after the data (quota gives a 552 for one mailbox
 * and a 452 for another), refusals at RCPT, and the failure modes (down, silent, hanging up
 * mid-transaction; the last two are fault-injecting fake peers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { OK } from "qpsmtpd";
import { FakeClock, TestSession, type TestSessionOptions } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { type Dovecot, startDovecot } from "../../helpers/dovecot.ts";
import { fakePeer, refusingPort } from "../../helpers/fake_peers.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const USERS = [
  { name: "alice", password: "a" },
  { name: "bob", password: "b" },
  { name: "carol", password: "c" },
  { name: "dave", password: "d" },
  { name: "erin", password: "e" },
  // Over quota: a permanent 552 after the data, and a temporary 452 for `busy`.
  { name: "full", password: "x", extra: "userdb_quota_rule=*:storage=1B" },
  { name: "busy", password: "x", extra: "userdb_quota_rule=*:storage=1B userdb_quota_full_tempfail=yes" },
];

let dovecot: Dovecot;
beforeAll(async () => {
  dovecot = await startDovecot({ users: USERS });
});
afterAll(async () => {
  await dovecot?.stop();
});

const tcp = () => `queue/lmtp host 127.0.0.1 port ${dovecot.lmtpPort}`;

/** One message through `plugin` to `to`; every recipient is accepted by a mock. */
async function deliver(plugin: string, to: string[], message = "Subject: hi\n\nhello\n", opts: Partial<TestSessionOptions> = {}) {
  const t = await TestSession.start({ plugins: [plugin, ...Object.keys(opts.modules ?? {})], ...opts });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO client.example");
  await t.command("MAIL FROM:<sender@example.net>");
  for (const r of to) expect((await t.command(`RCPT TO:<${r.includes("@") ? r : `${r}@example.org`}>`)).code).toBe(250);
  expect((await t.command("DATA")).code).toBe(354);
  return { r: await t.data(message), t };
}

const warnings = (t: TestSession) => t.logs.filter((l) => l.plugin === "queue::lmtp").map((l) => l.message);

describe("queue/lmtp with Dovecot", () => {
  test("delivers over TCP to every mailbox; 250 carries Dovecot's reply", async () => {
    const { r } = await deliver(tcp(), ["alice", "bob"], "Subject: tcp\n\n.leading dot\nline\n");
    expect(r.code).toBe(250);
    expect(r.text).toContain("Saved");
    for (const u of ["alice", "bob"]) {
      const [msg] = dovecot.messages(u).filter((m) => m.includes("Subject: tcp"));
      expect(msg).toBeDefined();
      expect(msg).toContain("Return-Path: <sender@example.net>");
      expect(msg).toContain("\n.leading dot\nline\n");
    }
  });

  test("delivers over the unix socket", async () => {
    const { r } = await deliver(`queue/lmtp socket ${dovecot.lmtpSocket}`, ["carol"], "Subject: unix\n\nx\n");
    expect(r.code).toBe(250);
    expect(dovecot.messages("carol").some((m) => m.includes("Subject: unix"))).toBe(true);
  });

  test("a 552 for one mailbox: 250, the rest delivered, the failure logged", async () => {
    const { r, t } = await deliver(tcp(), ["dave", "full"], "Subject: partial5\n\nx\n");
    expect(r.code).toBe(250);
    expect(r.text).toContain("delivered to 1 of 2 recipients");
    expect(dovecot.messages("dave").some((m) => m.includes("Subject: partial5"))).toBe(true);
    expect(warnings(t).some((l) => l.includes("<full@example.org>") && l.includes("552 5.2.2"))).toBe(true);
  });

  test("a 552 for one mailbox and a 452 for another after the data: 250, the rest delivered, each failure logged", async () => {
    let failed: string[] | undefined;
    const { r, t } = await deliver(tcp(), ["dave", "full", "busy"], "Subject: partial\n\nx\n", {
      modules: { note_reader: { hook_queue_post: (txn) => void (failed = txn.notes("lmtp_failed")) } },
    });
    expect(r.code).toBe(250);
    expect(r.text).toContain("delivered to 1 of 3 recipients");
    expect(dovecot.messages("dave").some((m) => m.includes("Subject: partial"))).toBe(true);
    const log = warnings(t);
    expect(log.some((l) => l.includes("<full@example.org>") && l.includes("552 5.2.2"))).toBe(true);
    expect(log.some((l) => l.includes("<busy@example.org>") && l.includes("452 4.2.2"))).toBe(true);
    expect(failed).toEqual([
      expect.stringMatching(/^<full@example\.org> 552 5\.2\.2 /),
      expect.stringMatching(/^<busy@example\.org> 452 4\.2\.2 /),
    ]);
  });

  test("none delivered, one refusal temporary: 452 with Dovecot's text, so the sender retries", async () => {
    const { r } = await deliver(tcp(), ["full", "busy"], "Subject: none\n\nx\n");
    expect(r.code).toBe(452);
    expect(r.status).toBe("4.2.2");
  });

  test("none delivered, every refusal permanent: 552 with Dovecot's text", async () => {
    const { r } = await deliver(tcp(), ["full"], "Subject: none\n\nx\n");
    expect(r.code).toBe(552);
    expect(r.lines[0]).toStartWith("5.2.2 <full@example.org> Quota exceeded");
  });

  test("an unknown mailbox refused at RCPT: the others get it, 250, the 550 logged", async () => {
    const { r, t } = await deliver(tcp(), ["erin", "nobody"], "Subject: rcpt550\n\nx\n");
    expect(r.code).toBe(250);
    expect(r.text).toContain("delivered to 1 of 2");
    expect(dovecot.messages("erin").some((m) => m.includes("Subject: rcpt550"))).toBe(true);
    expect(warnings(t).some((l) => l.includes("<nobody@example.org>") && l.includes("550 5.1.1"))).toBe(true);
  });

  test("every recipient unknown: 552 with the 5.1.1, nothing sent", async () => {
    const { r } = await deliver(tcp(), ["nobody", "noone"]);
    expect(r.code).toBe(552);
    expect(r.status).toBe("5.1.1");
  });

  test("the server is down (refused port, missing socket): 451, the sender keeps the message", async () => {
    const port = await refusingPort();
    const a = await deliver(`queue/lmtp host 127.0.0.1 port ${port}`, ["alice"]);
    expect(a.r.code).toBe(451);
    expect(warnings(a.t).some((l) => l.includes("stays with the sender"))).toBe(true);
    const b = await deliver(`queue/lmtp socket ${dovecot.dir}/no-such.sock`, ["alice"]);
    expect(b.r.code).toBe(451);
  });
});

describe("queue/lmtp: a temporary refusal at RCPT", () => {
  let limited: Dovecot;
  beforeAll(async () => {
    // One delivery per mailbox at a time: a second concurrent session gets 451 4.3.0 at RCPT.
    limited = await startDovecot({ users: USERS, extraConfig: "lmtp_user_concurrency_limit = 1" });
  });
  afterAll(async () => {
    await limited?.stop();
  });

  test("alice busy (451), bob accepted: 452 before the data, bob gets nothing yet", async () => {
    const hold = net.connect(limited.lmtpPort, "127.0.0.1");
    let seen = "";
    hold.on("data", (d) => (seen += d.toString()));
    hold.write("LHLO holder\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\n");
    while (!/2\.1\.5/.test(seen)) await new Promise((r) => setTimeout(r, 20));
    try {
      const { r, t } = await deliver(`queue/lmtp host 127.0.0.1 port ${limited.lmtpPort}`, ["alice", "bob"], "Subject: held\n\nx\n");
      expect(r.code).toBe(452);
      expect(r.status).toBe("4.3.0");
      expect(r.text).toContain("nothing delivered");
      expect(limited.messages("bob")).toEqual([]);
      expect(warnings(t).some((l) => l.includes("<alice@example.org>") && l.includes("451"))).toBe(true);
    } finally {
      hold.destroy();
    }
  });
});

/** A fake LMTP peer that takes two recipients and the data, answers one of them, then hangs up. */
function hangsUpAfterOneReply(s: net.Socket): void {
  s.write("220 fake LMTP\r\n");
  let buf = "";
  let inData = false;
  s.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    if (inData) {
      if (buf.includes("\r\n.\r\n")) {
        s.write("250 2.0.0 <a@example.org> Saved\r\n");
        s.destroy();
      }
      return;
    }
    let i: number;
    while ((i = buf.indexOf("\r\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (line.startsWith("LHLO")) s.write("250-fake\r\n250 PIPELINING\r\n");
      else if (line.startsWith("MAIL") || line.startsWith("RCPT")) s.write("250 OK\r\n");
      else if (line === "DATA") {
        s.write("354 go\r\n");
        inData = true;
        return;
      }
    }
  });
}

describe("queue/lmtp failure modes", () => {
  test("a server that accepts and never answers: 451 at the plugin's time limit, the connection dropped", async () => {
    const peer = await fakePeer();
    try {
      const clock = new FakeClock();
      const t = await TestSession.start({ clock, plugins: [`queue/lmtp host 127.0.0.1 port ${peer.port} timeout 5`] });
      t.mockHook("rcpt", () => OK);
      await t.command("EHLO c");
      await t.command("MAIL FROM:<s@example.net>");
      await t.command("RCPT TO:<alice@example.org>");
      await t.command("DATA");
      const pending = t.data("Subject: x\n\ny\n");
      while (peer.accepted === 0) await new Promise((r) => setTimeout(r, 10));
      await clock.advance(5_000);
      expect((await pending).code).toBe(451);
      while (peer.closed === 0) await new Promise((r) => setTimeout(r, 10));
      expect(peer.closed).toBe(1);
    } finally {
      await peer.close();
    }
  });

  test("lmtp_timeout bounds each reply on its own", async () => {
    const peer = await fakePeer();
    try {
      const { r, t } = await deliver(`queue/lmtp host 127.0.0.1 port ${peer.port} lmtp_timeout 0.2`, ["alice"]);
      expect(r.code).toBe(451);
      expect(warnings(t).some((l) => l.includes("timed out"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("a server that hangs up mid-transaction after one of two replies: 451, the possible duplicate logged", async () => {
    const peer = await fakePeer(hangsUpAfterOneReply);
    try {
      const { r, t } = await deliver(`queue/lmtp host 127.0.0.1 port ${peer.port}`, ["a@example.org", "b@example.org"]);
      expect(r.code).toBe(451);
      expect(peer.received[0]).toContain("RCPT TO:<b@example.org>");
      expect(warnings(t).some((l) => l.includes("twice"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("check() warns when the server does not answer, and is quiet when it does", async () => {
    const port = await refusingPort();
    const down = await pluginChecks(await testRegistry({ plugins: [`queue/lmtp host 127.0.0.1 port ${port}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toContain("does not answer");
    expect(await pluginChecks(await testRegistry({ plugins: [tcp()] }))).toEqual([]);
  });

  test("bad arguments stop start-up", async () => {
    for (const line of ["queue/lmtp host h port 99999", "queue/lmtp socket /s host h", "queue/lmtp hots h", "queue/lmtp host"]) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("queue/lmtp: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("queue/lmtp host 127.0.0.1 lmtp_timout 5", "lmtp_timout");
  });
});
