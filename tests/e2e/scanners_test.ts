/**
 * End to end: dist/qpsmtpd with every content scanner on one plugin chain (virus/clamdscan,
 * spamassassin, rspamd, milter with clamav-milter), against private clamd, spamd, rspamd and
 * clamav-milter, twenty clients at once, each pipelining two messages (a clean one, then a virus
 * or GTUBE); then `qpsmtpd check` with the backends up and down, and mail with them down.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Clamd, startClamd, VIRUS_MARKER, VIRUS_NAME } from "../helpers/clamd.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { type Milter, startClamavMilter } from "../helpers/milters.ts";
import { type Rspamd, startRspamd } from "../helpers/rspamd.ts";
import { GTUBE, type Spamd, startSpamd } from "../helpers/spamd.ts";
import { BINARY, configDir, type Daemon, RawClient, run, startDaemon } from "./helpers.ts";

let dns: TestDnsServer;
let spamd: Spamd;
let clamd: Clamd;
let rspamd: Rspamd;
let milter: Milter;
let qpsmtpd: Daemon;
let dir: string;
let maildir: string;
const startup: Record<string, number> = {};

/** Starts `start` and notes how long it took, for the report on what these daemons cost. */
async function timed<T>(name: string, start: () => Promise<T>): Promise<T> {
  const t = Date.now();
  const d = await start();
  startup[name] = Date.now() - t;
  return d;
}

beforeAll(async () => {
  dns = await TestDnsServer.start({});
  // One after the other: each start-up is mostly CPU, and its time is part of the report.
  rspamd = await timed("rspamd", () => startRspamd({ dnsPort: dns.port }));
  spamd = await timed("spamd", () => startSpamd({ children: 2 }));
  clamd = await timed("clamd", () => startClamd());
  milter = await timed("clamav-milter", () => startClamavMilter(clamd.socket, { rejectMsg: "Virus detected: %v" }));
  maildir = join(mkdtempSync(join(tmpdir(), "qpscan-")), "Maildir");
  dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\n",
    plugins: [
      "rcpt_ok",
      // The cheap scan first: a virus never costs a spamd scan.
      `virus/clamdscan clamd_socket ${clamd.socket}`,
      `spamassassin spamd_socket 127.0.0.1:${spamd.port} reject 20`,
      `rspamd host 127.0.0.1 port ${rspamd.port}`,
      `milter clamav 127.0.0.1:${milter.port}`,
      `queue/maildir ${maildir}`,
      "",
    ].join("\n"),
    logging: "logging/warn LOGINFO\n",
  });
  qpsmtpd = await startDaemon(dir, { args: ["-c", "50", "-m", "50"] });
  console.log(`daemon start-up (ms): ${JSON.stringify(startup)}`);
}, 120_000);

afterAll(async () => {
  qpsmtpd?.proc.kill("SIGKILL");
  await Promise.all([spamd, clamd, rspamd, milter].map((d) => d?.stop()));
});

const messages = (maildir: string): string[] =>
  existsSync(join(maildir, "new")) ? readdirSync(join(maildir, "new")).map((f) => readFileSync(join(maildir, "new", f), "utf8")) : [];

function message(n: number, kind: string, body: string): string {
  return [
    `From: sender${n}@example.net`,
    "To: user@example.org",
    `Subject: ${kind} ${n}`,
    `Date: ${new Date().toUTCString().replace(/GMT$/, "+0000")}`,
    `Message-ID: <${kind}-${n}@example.net>`,
    "",
    body,
    ".", // a lone dot in the content: it must be stuffed and come back
    "",
  ].join("\r\n").replace(/\r\n\.\r\n/g, "\r\n..\r\n");
}

/** One client: EHLO, then two messages, each one's final dot and the next transaction's commands pipelined. */
async function client(n: number): Promise<Array<{ code: number; text: string }>> {
  const c = await RawClient.connect(qpsmtpd.port);
  try {
    await c.reply(); // greeting
    await c.command(`EHLO client${n}.example`);
    const bodies = [
      ["clean", `Shall we have lunch on Tuesday, ${n}?`],
      n % 2 === 0 ? ["virus", `Please see the attachment.\r\n${VIRUS_MARKER}`] : ["spam", GTUBE],
    ];
    const out: Array<{ code: number; text: string }> = [];
    const envelope = `MAIL FROM:<sender${n}@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n`;
    c.write(envelope);
    for (const [i, [kind, body]] of bodies.entries()) {
      for (let k = 0; k < 3; k++) out.push(await c.reply(30_000)); // MAIL, RCPT, DATA (354)
      // The message, its final dot, and the next transaction's commands in one write.
      c.write(message(n, kind!, body!) + ".\r\n" + (i < bodies.length - 1 ? envelope : "QUIT\r\n"));
      out.push(await c.reply(60_000));
    }
    out.push(await c.reply());
    return out;
  } finally {
    c.close();
  }
}

describe("dist/qpsmtpd with spamassassin, virus/clamdscan, rspamd and milter", () => {
  test("twenty clients at once, pipelining: clean mail delivered with every scanner's header, a virus and GTUBE refused", async () => {
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, n) => client(n)));
    console.log(`20 clients × 2 messages through 4 scanners: ${Date.now() - started} ms`);
    for (const [n, r] of results.entries()) {
      expect(r.map((x) => x.code)).toEqual([250, 250, 354, 250, 250, 250, 354, 552, 221]);
      // After EHLO the engine puts an enhanced status code first.
      expect(r[7]!.text).toMatch(/^5\.\d\.\d+ /);
      expect(r[7]!.text.replace(/^5\.\d\.\d+ /, "")).toBe(n % 2 === 0 ? `Virus found: ${VIRUS_NAME}` : "spam score exceeded threshold");
    }
    const delivered = messages(maildir);
    expect(delivered).toHaveLength(20);
    for (const m of delivered) {
      expect(m).toMatch(/^Subject: clean \d+$/m);
      expect(m).toMatch(/^X-Spam-Status: No, score=/m);
      expect(m).toMatch(/^X-Virus-Checked: by ClamAV [\d.]+ on mx\.example\.org$/m);
      expect(m).toMatch(/^X-Rspamd-Score: /m);
      expect(m).toMatch(/^X-Virus-Status: Clean$/m); // clamav-milter
      expect(m).toMatch(/\n\.\n/); // the stuffed lone dot came back
    }
    const log = qpsmtpd.stderr();
    expect(log.match(/spamassassin: pass, Ham/g)?.length).toBe(20);
    expect(log.match(/spamassassin: fail, Spam/g)?.length).toBe(10);
    expect(log.match(/virus::clamdscan: fail, found virus/g)?.length).toBe(10);
    expect(log.match(/virus::clamdscan: pass, clean/g)?.length).toBe(30);
    expect(log.match(/rspamd: no action/g)?.length).toBe(20);
    expect(log.match(/milter: milter clamav: (accept|continue)/g)?.length).toBe(20);
  }, 120_000);

  test("qpsmtpd check: quiet with the backends up; a warning naming each backend that is down", async () => {
    const up = await run([BINARY, "check", "--config", dir]);
    expect(up.code).toBe(0);
    expect(up.out).not.toContain("warning");
    await Promise.all([spamd.stop(), rspamd.stop(), milter.stop()]);
    await clamd.stop();
    const down = await run([BINARY, "check", "--config", dir]);
    expect(down.code).toBe(0); // warnings never fail check
    expect(down.out).toMatch(/warning: spamassassin: spamd at 127\.0\.0\.1:\d+ does not answer/);
    expect(down.out).toMatch(/warning: virus\/clamdscan: clamd at \S+clamd\.sock does not answer/);
    expect(down.out).toMatch(/warning: rspamd: rspamd at http:\/\/127\.0\.0\.1:\d+ does not answer/);
    expect(down.out).toMatch(/warning: milter: milter clamav at 127\.0\.0\.1:\d+ does not answer/);
  }, 60_000);

  test("the backends down: mail is accepted unscanned, each scanner logging a warning", async () => {
    const c = await RawClient.connect(qpsmtpd.port);
    await c.reply();
    await c.command("EHLO late.example");
    expect((await c.command("MAIL FROM:<late@example.net>")).code).toBe(250);
    expect((await c.command("RCPT TO:<user@example.org>")).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.write(message(99, "spam", GTUBE) + ".\r\n");
    expect((await c.reply(30_000)).code).toBe(250);
    c.close();
    const log = qpsmtpd.stderr();
    for (const what of ["spamd at", "clamd at", "rspamd at", "milter clamav failed at mail"]) expect(log).toContain(what);
  }, 60_000);
});
