/**
 * spamassassin against a real spamd (Debian's, with the rules it ships), over TCP and a unix
 * socket; the broken peers are a port where nothing listens, a listener that hangs up and one
 * that never answers. The last test stops spamd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LOGINFO, LOGWARN, OK } from "qpsmtpd";
import { pluginChecks } from "../../src/core/checks.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { type BrokenPeer, brokenPeer, deadPort } from "../helpers/daemon.ts";
import { deliver, headerOf, logged, mail } from "../helpers/scan.ts";
import { GTUBE, type Spamd, startSpamd } from "../helpers/spamd.ts";

let spamd: Spamd;
let silent: BrokenPeer;
let hangup: BrokenPeer;
beforeAll(async () => {
  [spamd, silent, hangup] = await Promise.all([startSpamd(), brokenPeer("silent"), brokenPeer("hangup")]);
});
afterAll(async () => {
  await Promise.all([spamd?.stop(), silent?.close(), hangup?.close()]);
});

const sa = (...args: string[]) => `spamassassin spamd_socket 127.0.0.1:${spamd.port} ${args.join(" ")}`.trim();
const NAME = "spamassassin";

describe("spamassassin with spamd", () => {
  test("GTUBE at or above `reject N` is refused; the note, karma and log say why", async () => {
    const { r, t, queued } = await deliver([sa("reject", "12")], mail("buy now", GTUBE));
    expect([r.code, r.text]).toEqual([552, "spam score exceeded threshold"]);
    expect(queued).toBeUndefined();
    const fail = logged(t, NAME, /^fail, Spam, \d{3,4}(\.\d)? \/ 5 >= 12, \d+ ms$/);
    expect(fail.length).toBe(1);
    expect(fail[0]!.level).toBe(LOGINFO);
    expect(t.connection.notes("karma")).toBe(-1);
  });

  test("spam under the threshold is tagged: X-Spam-Flag, -Status and -Level at the top", async () => {
    const { r, t, queued } = await deliver([sa()], mail("buy now", GTUBE));
    expect(r.code).toBe(250);
    const h = headerOf(queued);
    expect(h).toMatch(/^X-Spam-Checker-Version: SpamAssassin/);
    expect(h).toContain("\nX-Spam-Flag: YES\n");
    expect(h).toMatch(/\nX-Spam-Level: \*{50}\n/);
    expect(h).toMatch(/\nX-Spam-Status: Yes, score=\d{3,4}\.\d required=5\.0 tests=[^]*GTUBE/);
    expect(h).not.toContain("X-Spam-Report");
    expect(logged(t, NAME, /^fail, tolerated, Spam/).length).toBe(1);
  });

  test("clean mail passes with its headers", async () => {
    const { r, t, queued } = await deliver([sa("reject", "5")], mail("lunch", "Shall we have lunch on Tuesday?"));
    expect(r.code).toBe(250);
    const h = headerOf(queued);
    expect(h).toMatch(/\nX-Spam-Status: No, score=-?\d+\.\d required=5\.0/);
    expect(h).not.toContain("X-Spam-Flag");
    expect(logged(t, NAME, /^pass, Ham, -?\d+(\.\d+)? \/ 5, \d+ ms$/).length).toBe(1);
  });

  test("the note is what karma and naughty read: is_spam, score, required, tests", async () => {
    let seen: unknown;
    const t = await deliverWithNote([sa()], mail("buy", GTUBE), (n) => (seen = n));
    expect(t.code).toBe(250);
    expect(seen).toMatchObject({ is_spam: "Yes", required: 5, autolearn: "no" });
    expect((seen as { score: number }).score).toBeGreaterThan(900); // GTUBE is 1000, other rules move it a little
    expect(String((seen as { tests: string }).tests)).toContain("GTUBE");
  });

  test("munge_subject_threshold prefixes the Subject with subject_prefix (default *** SPAM ***)", async () => {
    const plain = await deliver([sa("munge_subject_threshold", "8")], mail("buy now", GTUBE));
    expect(headerOf(plain.queued)).toContain("\nSubject: *** SPAM *** buy now\n");
    const own = await deliver([sa("munge_subject_threshold", "8", "subject_prefix", "[SPAM]")], mail("buy now", GTUBE));
    expect(headerOf(own.queued)).toContain("\nSubject: [SPAM] buy now\n");
    const ham = await deliver([sa("munge_subject_threshold", "8")], mail("lunch", "Shall we have lunch?"));
    expect(headerOf(ham.queued)).toContain("\nSubject: lunch\n");
  });

  test("over the unix socket", async () => {
    const { r, queued } = await deliver([`spamassassin spamd_socket ${spamd.socket}`], mail("buy", GTUBE));
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toContain("X-Spam-Flag: YES");
  });

  test("leave_old_headers: a forged X-Spam-Flag is renamed (default), dropped, or kept", async () => {
    const forged = mail("lunch", "Shall we have lunch?", ["X-Spam-Flag: NO-TRUST-ME"]);
    const renamed = headerOf((await deliver([sa()], forged)).queued);
    expect(renamed).toContain("X-Old-Spam-Flag: NO-TRUST-ME");
    expect(renamed).not.toMatch(/^X-Spam-Flag: NO-TRUST-ME/m);
    const dropped = headerOf((await deliver([sa("leave_old_headers", "drop")], forged)).queued);
    expect(dropped).not.toContain("NO-TRUST-ME");
    const kept = headerOf((await deliver([sa("leave_old_headers", "keep")], forged)).queued);
    expect(kept).toMatch(/^X-Spam-Flag: NO-TRUST-ME$/m);
  });

  test("headers none: no header field, the note only", async () => {
    let seen: unknown;
    const r = await deliverWithNote(
      [sa("headers", "none")],
      mail("buy", GTUBE),
      (n) => (seen = n),
      (q) => expect(q).not.toContain("X-Spam"),
    );
    expect(r.code).toBe(250);
    expect(seen).toMatchObject({ is_spam: "Yes" });
  });

  test("several recipients: X-Spam-User names the spamd user and the count", async () => {
    const { queued } = await deliver([sa("spamd_user", "nobody")], mail("hi", "Shall we have lunch?"), {
      to: ["<a@example.org>", "<b@example.org>"],
    });
    expect(headerOf(queued)).toMatch(/^X-Spam-User: nobody, 2 recipients$/m);
  });

  test("relayclient skip: relay clients are not scanned", async () => {
    const { r, t, queued } = await deliver([sa("relayclient", "skip", "reject", "5")], mail("buy", GTUBE), { relay: true });
    expect(r.code).toBe(250);
    expect(queued).not.toContain("X-Spam");
    expect(logged(t, NAME, /^skip, relay client/).length).toBe(1);
  });

  test("a message above size_limit is not scanned, with a log line", async () => {
    const { r, t, queued } = await deliver([sa("size_limit", "100", "reject", "5")], mail("buy", GTUBE));
    expect(r.code).toBe(250);
    expect(queued).not.toContain("X-Spam");
    expect(logged(t, NAME, /^skip, too large \(\d+ > 100 bytes\)$/).length).toBe(1);
  });

  test("bad arguments stop start-up", async () => {
    await expect(testRegistry({ plugins: ["spamassassin reject"] })).rejects.toThrow(/"reject" needs a value/);
    await expect(testRegistry({ plugins: ["spamassassin rejct 5"] })).rejects.toThrow(/unknown argument "rejct"/);
    await expect(testRegistry({ plugins: ["spamassassin spamd_socket no-port"] })).rejects.toThrow(/spamd_socket/);
  });

  test("qpsmtpd check: quiet when spamd answers PING, a warning when it does not", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [sa()] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`spamassassin spamd_socket 127.0.0.1:${await deadPort()}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^spamassassin: spamd at 127\.0\.0\.1:\d+ does not answer/);
  });
});

describe("spamassassin when spamd fails", () => {
  const broken = async (port: number, ...args: string[]) =>
    await deliver([`spamassassin spamd_socket 127.0.0.1:${port} reject 5 ${args.join(" ")}`.trim()], mail("buy", GTUBE));

  test("nothing listening: accepted unscanned with a warning; defer_on_error yes → 451", async () => {
    const port = await deadPort();
    const open = await broken(port);
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/)[0]?.level).toBe(LOGWARN);
    const closed = await broken(port, "defer_on_error", "yes");
    expect(closed.r.code).toBe(451);
    expect(closed.r.text).toContain("try again later");
    expect(closed.queued).toBeUndefined();
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
    const pending = deliver([`spamassassin spamd_socket 127.0.0.1:${silent.port} reject 5 timeout 5`], mail("buy", GTUBE), { clock });
    while (silent.accepted === before) await new Promise((r) => setTimeout(r, 5)); // the scan has started
    await clock.advance(5000);
    const { r, t } = await pending;
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => /did not answer hook data_post within 5s/.test(l.message))).toBe(true);
  });

  test("spamd stopped mid-test: accepted with a warning; defer_on_error yes → 451", async () => {
    expect((await deliver([sa("reject", "5")], mail("buy", GTUBE))).r.code).toBe(552);
    await spamd.stop();
    const open = await deliver([sa("reject", "5")], mail("buy", GTUBE));
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /failed, message not scanned/).length).toBe(1);
    expect((await deliver([sa("reject", "5", "defer_on_error", "yes")], mail("buy", GTUBE))).r.code).toBe(451);
  });
});

/** Delivers and hands the `spamassassin` note (read in a queue mock, before the transaction ends) to `see`. */
async function deliverWithNote(plugins: string[], message: string, see: (note: unknown) => void, queued?: (q: string) => void) {
  const t = await TestSession.start({ plugins });
  t.mockHook("rcpt", () => OK);
  t.mockHook("queue", async (txn) => {
    see(txn.notes("spamassassin"));
    let s = "";
    for await (const c of txn.message_stream()) s += new TextDecoder().decode(c);
    queued?.(s);
    return [OK, "queued"];
  });
  await t.command("EHLO c");
  await t.command("MAIL FROM:<alice@example.net>");
  await t.command("RCPT TO:<bob@example.org>");
  await t.command("DATA");
  return await t.data(message);
}
