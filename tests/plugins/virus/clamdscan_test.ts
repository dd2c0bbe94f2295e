/**
 * virus/clamdscan against a real clamd (Debian's clamav-daemon on a two-signature database,
 * StreamMaxLength 1M), over TCP and a unix socket; the broken peers are a port where nothing
 * listens, a listener that hangs up and one that never answers. The last test stops clamd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LOGINFO, LOGNOTICE, LOGWARN, OK } from "qpsmtpd";
import { pluginChecks } from "../../../src/core/checks.ts";
import { TestSession } from "../../../src/testing/harness.ts";
import { FakeClock } from "../../../src/testing/fake_clock.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { type Clamd, startClamd, VIRUS_MARKER, VIRUS_NAME } from "../../helpers/clamd.ts";
import { type BrokenPeer, brokenPeer, deadPort } from "../../helpers/daemon.ts";
import { deliver, headerOf, logged, mail } from "../../helpers/scan.ts";

let clamd: Clamd;
let silent: BrokenPeer;
let hangup: BrokenPeer;
beforeAll(async () => {
  [clamd, silent, hangup] = await Promise.all([startClamd({ streamMaxLength: "1M" }), brokenPeer("silent"), brokenPeer("hangup")]);
});
afterAll(async () => {
  await Promise.all([clamd?.stop(), silent?.close(), hangup?.close()]);
});

const NAME = "virus::clamdscan";
const scanner = (...args: string[]) => ["virus/clamdscan", "clamd_host", "127.0.0.1", "clamd_port", String(clamd.port), ...args].join(" ");
const infected = () => mail("invoice", `Please see the attachment.\n${VIRUS_MARKER}\nRegards`);
const clean = () => mail("lunch", "Shall we have lunch on Tuesday?");
const multipart = (body: string) =>
  mail("parts", `--b1\nContent-Type: text/plain\n\n${body}\n--b1--`, ["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b1"']);

describe("virus/clamdscan with clamd", () => {
  test("a virus is refused; the connection is marked naughty and loses karma", async () => {
    const { r, t, queued } = await deliver([scanner()], infected());
    expect([r.code, r.text]).toEqual([552, `Virus found: ${VIRUS_NAME}`]);
    expect(queued).toBeUndefined();
    expect(logged(t, NAME, new RegExp(`^fail, found virus ${VIRUS_NAME.replace(/\./g, "\\.")}, \\d+ ms$`))[0]?.level).toBe(LOGNOTICE);
    expect(t.connection.notes("naughty")).toBe(`Virus found: ${VIRUS_NAME}`);
    expect(t.connection.notes("karma")).toBe(-1);
  });

  test("deny_viruses no: accepted and tagged with the virus's name", async () => {
    const { r, queued } = await deliver([scanner("deny_viruses", "no")], infected());
    expect(r.code).toBe(250);
    const h = headerOf(queued);
    expect(h).toMatch(/^X-Virus-Details: Test\.QPSMTPD\.Marker\.UNOFFICIAL$/m);
    expect(h).toMatch(/^X-Virus-Found: Yes$/m);
  });

  test("clean mail passes with X-Virus-Found: No and the scanner's version", async () => {
    const { r, t, queued } = await deliver([scanner()], clean(), { config: { me: "mx.example.org" } });
    expect(r.code).toBe(250);
    const h = headerOf(queued);
    expect(h).toMatch(/^X-Virus-Checked: by ClamAV \d+\.\d+\.\d+ on mx\.example\.org\nX-Virus-Found: No\n/);
    expect(logged(t, NAME, /^pass, clean, \d+ ms$/)[0]?.level).toBe(LOGINFO);
  });

  test("over the unix socket", async () => {
    const { r } = await deliver([`virus/clamdscan clamd_socket ${clamd.socket}`], infected());
    expect(r.code).toBe(552);
    expect((await deliver([`virus/clamdscan clamd_socket ${clamd.socket}`], clean())).r.code).toBe(250);
  });

  test("a message above max_size is not scanned, with a log line", async () => {
    const big = mail("big", `${VIRUS_MARKER}\n${"x".repeat(76)}\n`.repeat(20));
    const { r, t, queued } = await deliver([scanner("max_size", "1")], big);
    expect(r.code).toBe(250);
    expect(queued).not.toContain("X-Virus");
    expect(logged(t, NAME, /^skip, too big \(\d+ > 1024 bytes\)$/)[0]?.level).toBe(LOGINFO);
  });

  test("clamd's size-limit refusal (StreamMaxLength below max_size): logged, accepted, not deferred", async () => {
    const big = mail("big", `${"y".repeat(999)}\n`.repeat(1200)); // 1.2 MB
    const { r, t } = await deliver([scanner("max_size", "4096", "defer_on_error", "yes")], big);
    expect(r.code).toBe(250);
    expect(logged(t, NAME, /^skip, clamd refused the size \(\d+ bytes; its StreamMaxLength is below max_size\)/)[0]?.level).toBe(LOGWARN);
  });

  test("scan_all no: only multipart messages are scanned", async () => {
    const plain = await deliver([scanner("scan_all", "no")], infected());
    expect(plain.r.code).toBe(250);
    expect(logged(plain.t, NAME, /^skip, not multipart$/).length).toBe(1);
    const parts = await deliver([scanner("scan_all", "no")], multipart(VIRUS_MARKER));
    expect(parts.r.code).toBe(552);
  });

  test("a connection already naughty is not scanned", async () => {
    const t = await TestSession.start({ plugins: [scanner()] });
    t.connection.notes("naughty", "earlier trouble");
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => [OK, "queued"]);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data(infected())).code).toBe(250);
    expect(logged(t, NAME, /^skip, naughty$/).length).toBe(1);
  });

  test("bad arguments stop start-up", async () => {
    await expect(testRegistry({ plugins: ["virus/clamdscan clamd_port"] })).rejects.toThrow(/"clamd_port" needs a value/);
    await expect(testRegistry({ plugins: ["virus/clamdscan clamd_port x"] })).rejects.toThrow(/clamd_port "x"/);
    await expect(testRegistry({ plugins: ["virus/clamdscan deny_viruses maybe"] })).rejects.toThrow(/yes or no/);
  });

  test("qpsmtpd check: quiet when clamd answers zPING, a warning when it does not", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [scanner()] }))).toEqual([]);
    expect(await pluginChecks(await testRegistry({ plugins: [`virus/clamdscan clamd_socket ${clamd.socket}`] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`virus/clamdscan clamd_port ${await deadPort()}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^virus\/clamdscan: clamd at localhost:\d+ does not answer/);
  });
});

describe("virus/clamdscan when clamd fails", () => {
  const broken = (port: number, ...args: string[]) =>
    deliver([["virus/clamdscan clamd_host 127.0.0.1 clamd_port", String(port), ...args].join(" ")], infected());

  test("nothing listening: accepted unscanned with a warning; defer_on_error yes → 451", async () => {
    const port = await deadPort();
    const open = await broken(port);
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/)[0]?.level).toBe(LOGWARN);
    const closed = await broken(port, "defer_on_error", "yes");
    expect([closed.r.code, closed.r.status, closed.r.text]).toEqual([451, "4.3.0", "Unable to scan for viruses now, try again later"]);
  });

  test("a peer that hangs up: the same", async () => {
    expect((await broken(hangup.port)).r.code).toBe(250);
    expect((await broken(hangup.port, "defer_on_error", "yes")).r.code).toBe(451);
  });

  test("a peer that never answers: after scan_timeout, the same", async () => {
    const open = await broken(silent.port, "scan_timeout", "0.3");
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /no answer within the time limit/).length).toBe(1);
    expect((await broken(silent.port, "scan_timeout", "0.3", "defer_on_error", "yes")).r.code).toBe(451);
  });

  test("a silent peer and the engine's time limit on the session clock: accepted, logged", async () => {
    const clock = new FakeClock();
    const before = silent.accepted;
    const pending = deliver([`virus/clamdscan clamd_host 127.0.0.1 clamd_port ${silent.port} timeout 5`], infected(), { clock });
    while (silent.accepted === before) await new Promise((r) => setTimeout(r, 5)); // the scan has started
    await clock.advance(5000);
    const { r, t } = await pending;
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => /did not answer hook data_post within 5s/.test(l.message))).toBe(true);
  });

  test("clamd stopped mid-test: accepted with a warning; defer_on_error yes → 451", async () => {
    expect((await deliver([scanner()], infected())).r.code).toBe(552);
    await clamd.stop();
    const open = await deliver([scanner()], infected());
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/).length).toBe(1);
    expect((await deliver([scanner("defer_on_error", "yes")], infected())).r.code).toBe(451);
  });
});
