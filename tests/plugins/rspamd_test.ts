/**
 * rspamd against a real rspamd (Debian's, its rules, DNS sent to our loopback DNS server), with
 * rspamd's GTUBE variants for reject / add header / rewrite subject and a force_actions rule for
 * soft reject; the broken peers are a port where nothing listens, a listener that hangs up and one
 * that never answers. The last test stops rspamd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LOGINFO, LOGWARN, OK } from "qpsmtpd";
import { pluginChecks } from "../../src/core/checks.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { type BrokenPeer, brokenPeer, deadPort } from "../helpers/daemon.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { GTUBE_ADD_HEADER, GTUBE_REJECT, GTUBE_REWRITE_SUBJECT, type Rspamd, SOFT_REJECT_SENDER, startRspamd } from "../helpers/rspamd.ts";
import { deliver, headerOf, logged, mail } from "../helpers/scan.ts";

let dns: TestDnsServer;
let rspamd: Rspamd;
let silent: BrokenPeer;
let hangup: BrokenPeer;
beforeAll(async () => {
  dns = await TestDnsServer.start({});
  [rspamd, silent, hangup] = await Promise.all([startRspamd({ dnsPort: dns.port }), brokenPeer("silent"), brokenPeer("hangup")]);
});
afterAll(async () => {
  await Promise.all([rspamd?.stop(), silent?.close(), hangup?.close()]);
});

const NAME = "rspamd";
const plugin = (...args: string[]) => ["rspamd host 127.0.0.1 port", String(rspamd.port), ...args].join(" ");
const ham = () => mail("lunch", "Shall we have lunch on Tuesday?");

describe("rspamd with rspamd", () => {
  test("reject → 550 with rspamd's message; karma and log", async () => {
    const { r, t, queued } = await deliver([plugin()], mail("buy", GTUBE_REJECT));
    expect([r.code, r.status, r.text]).toEqual([550, "5.7.1", "Gtube pattern"]);
    expect(queued).toBeUndefined();
    expect(t.connection.notes("karma")).toBe(-1);
    expect(logged(t, NAME, /^reject, score 15 \/ 15, \d+ ms$/)[0]?.level).toBe(LOGINFO);
  });

  test("reject no: the verdict is only written down", async () => {
    const { r, queued } = await deliver([plugin("reject", "no")], mail("buy", GTUBE_REJECT));
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/^X-Rspamd-Score: 15$/m);
    expect(headerOf(queued)).toMatch(/^X-Rspamd-Bar: \+{15}$/m);
  });

  test("soft reject → 451 with rspamd's message", async () => {
    const { r, queued } = await deliver([plugin()], ham(), { from: `<${SOFT_REJECT_SENDER}>` });
    expect([r.code, r.status, r.text]).toEqual([451, "4.7.1", "Come back later"]);
    expect(queued).toBeUndefined();
    expect((await deliver([plugin("soft_reject", "no")], ham(), { from: `<${SOFT_REJECT_SENDER}>` })).r.code).toBe(250);
  });

  test("rewrite subject: the Subject rspamd gives", async () => {
    const { r, queued } = await deliver([plugin()], mail("cheap pills", GTUBE_REWRITE_SUBJECT));
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/^Subject: \*\*\* SPAM \*\*\* cheap pills$/m);
    const kept = await deliver([plugin("rewrite_subject", "no")], mail("cheap pills", GTUBE_REWRITE_SUBJECT));
    expect(headerOf(kept.queued)).toMatch(/^Subject: cheap pills$/m);
  });

  test("add header: X-Spam: Yes and the score", async () => {
    const { r, queued } = await deliver([plugin()], mail("offer", GTUBE_ADD_HEADER));
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/^X-Spam: Yes$/m);
    expect(headerOf(queued)).toMatch(/^X-Rspamd-Score: 6$/m);
  });

  test("clean mail passes with headers; rspamd's milter header changes are applied", async () => {
    const forged = mail("lunch", "Shall we have lunch on Tuesday?", ["X-Spam: Yes", "X-Spamd-Result: forged"]);
    const { r, t, queued } = await deliver([plugin()], forged);
    expect(r.code).toBe(250);
    const h = headerOf(queued);
    expect(h).not.toContain("X-Spam: Yes"); // milter.remove_headers
    expect(h).not.toContain("forged");
    expect(h).toMatch(/^X-Spamd-Result: default: False \[-?\d+\.\d\d \/ 15\.00\];\n\t/m); // milter.add_headers
    expect(h).toMatch(/^X-Rspamd-Server: /m);
    expect(h).toMatch(/^X-Rspamd-Score: -?\d/m);
    expect(logged(t, NAME, /^(no action|greylist), score -?[\d.]+ \/ 15, \d+ ms$/).length).toBe(1); // the forged X-Spam scores
  });

  test("the envelope goes as request headers: every recipient", async () => {
    const two = mail("lunch", "Shall we have lunch?").replace("To: bob@example.org", "To: bob@example.org, carol@example.org");
    const both = await deliver([plugin()], two, { to: ["<bob@example.org>", "<carol@example.org>"] });
    expect(headerOf(both.queued)).toContain("TO_MATCH_ENVRCPT_ALL");
    const one = await deliver([plugin()], two, { to: ["<bob@example.org>"] });
    expect(headerOf(one.queued)).toContain("TO_MATCH_ENVRCPT_SOME");
  });

  test("the note holds the verdict for karma and naughty", async () => {
    const t = await TestSession.start({ plugins: [plugin()] });
    let seen: unknown;
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", (txn) => {
      seen = txn.notes("rspamd");
      return [OK, "queued"];
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data(mail("offer", GTUBE_ADD_HEADER))).code).toBe(250);
    expect(seen).toMatchObject({ action: "add header", score: 6, required_score: 15 });
  });

  test("relayclient skip: relay clients are not scanned", async () => {
    const { r, t } = await deliver([plugin("relayclient", "skip")], mail("buy", GTUBE_REJECT), { relay: true });
    expect(r.code).toBe(250);
    expect(logged(t, NAME, /^skip, relay client/).length).toBe(1);
  });

  test("bad arguments stop start-up", async () => {
    await expect(testRegistry({ plugins: ["rspamd port"] })).rejects.toThrow(/"port" needs a value/);
    await expect(testRegistry({ plugins: ["rspamd port http"] })).rejects.toThrow(/port "http"/);
    await expect(testRegistry({ plugins: ["rspamd add_headers often"] })).rejects.toThrow(/always, sometimes or never/);
  });

  test("qpsmtpd check: quiet when rspamd answers /ping, a warning when it does not", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [plugin()] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`rspamd host 127.0.0.1 port ${await deadPort()}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^rspamd: rspamd at http:\/\/127\.0\.0\.1:\d+ does not answer/);
  });
});

describe("rspamd when rspamd fails", () => {
  const broken = (port: number, ...args: string[]) =>
    deliver([["rspamd host 127.0.0.1 port", String(port), ...args].join(" ")], mail("buy", GTUBE_REJECT));

  test("nothing listening: accepted unscanned with a warning; defer_on_error yes → 451", async () => {
    const port = await deadPort();
    const open = await broken(port);
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/)[0]?.level).toBe(LOGWARN);
    const closed = await broken(port, "defer_on_error", "yes");
    expect([closed.r.code, closed.r.status, closed.r.text]).toEqual([451, "4.3.0", "Unable to scan for spam now, try again later"]);
  });

  test("a peer that hangs up: the same", async () => {
    expect((await broken(hangup.port)).r.code).toBe(250);
    expect((await broken(hangup.port, "defer_on_error", "yes")).r.code).toBe(451);
  });

  test("a peer that never answers: after scan_timeout, the same", async () => {
    const open = await broken(silent.port, "scan_timeout", "0.3");
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /no answer within 300 ms/).length).toBe(1);
    expect((await broken(silent.port, "scan_timeout", "0.3", "defer_on_error", "yes")).r.code).toBe(451);
  });

  test("a silent peer and the engine's time limit on the session clock: accepted, logged", async () => {
    const clock = new FakeClock();
    const before = silent.accepted;
    const pending = deliver([`rspamd host 127.0.0.1 port ${silent.port} timeout 5`], mail("buy", GTUBE_REJECT), { clock });
    while (silent.accepted === before) await new Promise((r) => setTimeout(r, 5)); // the scan has started
    await clock.advance(5000);
    const { r, t } = await pending;
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => /did not answer hook data_post within 5s/.test(l.message))).toBe(true);
  });

  test("rspamd stopped mid-test: accepted with a warning; defer_on_error yes → 451", async () => {
    expect((await deliver([plugin()], mail("buy", GTUBE_REJECT))).r.code).toBe(550);
    await rspamd.stop();
    const open = await deliver([plugin()], mail("buy", GTUBE_REJECT));
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/).length).toBe(1);
    expect((await deliver([plugin("defer_on_error", "yes")], mail("buy", GTUBE_REJECT))).r.code).toBe(451);
  });
});
