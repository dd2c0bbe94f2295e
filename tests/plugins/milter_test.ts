/**
 * milter against real milters speaking protocol version 6: Debian's clamav-milter (in front of a
 * private clamd) and opendkim, and for the stages and actions those two never use, a scripted
 * milter on Sendmail's own libmilter (python3-milter; tests/fixtures/milter/scripted_milter.py).
 * The broken peers are a port where nothing listens, a listener that hangs up and one that never
 * answers. The last tests stop clamd and clamav-milter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LOGWARN, OK } from "qpsmtpd";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { pluginChecks } from "../../src/core/checks.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { type Clamd, startClamd, VIRUS_MARKER, VIRUS_NAME } from "../helpers/clamd.ts";
import { type BrokenPeer, brokenPeer, deadPort } from "../helpers/daemon.ts";
import {
  type Milter,
  type Opendkim,
  type ScriptedMilter,
  startClamavMilter,
  startOpendkim,
  startScriptedMilter,
} from "../helpers/milters.ts";
import { deliver, headerOf, logged, mail } from "../helpers/scan.ts";

let clamd: Clamd;
let rejecting: Milter;
let replying: Milter;
let quarantining: Milter;
let discarding: Milter;
let dkim: Opendkim;
let scripted: ScriptedMilter;
let silent: BrokenPeer;
let hangup: BrokenPeer;
beforeAll(async () => {
  clamd = await startClamd();
  [rejecting, replying, quarantining, discarding, dkim, scripted, silent, hangup] = await Promise.all([
    startClamavMilter(clamd.socket, { unixSocket: true }),
    startClamavMilter(clamd.socket, { rejectMsg: "Virus detected: %v" }),
    startClamavMilter(clamd.socket, { onInfected: "Quarantine" }),
    startClamavMilter(clamd.socket, { onInfected: "Blackhole" }),
    startOpendkim(),
    startScriptedMilter(),
    brokenPeer("silent"),
    brokenPeer("hangup"),
  ]);
});
afterAll(async () => {
  await Promise.all([rejecting, replying, quarantining, discarding, dkim, scripted, clamd].map((d) => d?.stop()));
  await Promise.all([silent?.close(), hangup?.close()]);
});

const NAME = "milter";
const CONFIG = { me: "mx.example.org", rcpthosts: "example.org" };
const at = (m: Milter, ...args: string[]) => ["milter", "m", m.socket ?? `127.0.0.1:${m.port}`, ...args].join(" ");
/** One message through the milter, then rcpt_ok (the milter must see RCPT: no mock in front). */
const send = (plugin: string, message: string, opts: { from?: string; to?: string[]; remoteIp?: string; clock?: FakeClock } = {}) =>
  deliver([plugin, "rcpt_ok"], message, { config: CONFIG, rcptMock: false, ...opts });
const virus = (from = "alice@example.net") =>
  mail("invoice", `Please see the attachment.\n${VIRUS_MARKER}\n`).replace("alice@example.net", from);
const clean = () => mail("lunch", "Shall we have lunch on Tuesday?\n.leading dot");

/** A session with the milter and rcpt_ok, greeted with EHLO `helo`. */
async function session(plugin: string, opts: Partial<TestSessionOptions> & { helo?: string } = {}): Promise<TestSession> {
  const t = await TestSession.start({ plugins: [plugin, "rcpt_ok"], config: CONFIG, ...opts });
  if (!t.closed) await t.command(`EHLO ${opts.helo ?? "client.example"}`);
  t.mockHook("queue", () => [OK, "queued"]);
  return t;
}

/** Events the scripted milter logged after `from` (an earlier count). */
const since = (from: number) => scripted.events().slice(from);

describe("milter: every stage the milter asks for, with its data", () => {
  test("connect, HELO, MAIL, RCPT, DATA, header fields (ours first), end of header, body in CRLF, end of message", async () => {
    const from = scripted.events().length;
    const { r, queued } = await send(at(scripted), clean(), { to: ["<bob@example.org>"] });
    expect(r.code).toBe(250);
    expect(queued).toContain("Shall we have lunch");
    const ev = since(from);
    const order = ev.map((e) => e.ev).filter((e) => e !== "close" && e !== "abort");
    expect(order.slice(0, 5)).toEqual(["connect", "helo", "mail", "rcpt", "data"]);
    expect(order.slice(-3)).toEqual(["eoh", "body", "eom"]);
    expect(ev.find((e) => e.ev === "connect")).toMatchObject({
      hostname: "[127.0.0.1]",
      ip: "127.0.0.1",
      j: "mx.example.org",
      daemon: "qpsmtpd",
    });
    expect(ev.find((e) => e.ev === "helo")).toMatchObject({ name: "client.example" });
    const mailEv = ev.find((e) => e.ev === "mail")!;
    expect(mailEv).toMatchObject({ sender: "<alice@example.net>", mail_addr: "alice@example.net" });
    expect(ev.find((e) => e.ev === "eom")?.["i"]).toBe(mailEv["i"]);
    expect(ev.find((e) => e.ev === "rcpt")).toMatchObject({ rcpt: "<bob@example.org>", rcpt_addr: "bob@example.org" });
    const headers = ev.filter((e) => e.ev === "header").map((e) => e["name"]);
    expect(headers.slice(0, 2)).toEqual(["Authentication-Results", "Received"]);
    expect(headers).toContain("Subject");
    expect(ev.find((e) => e.ev === "header" && e["name"] === "Subject")?.["value"]).toBe("lunch");
    expect(ev.find((e) => e.ev === "body")?.["text"]).toBe("Shall we have lunch on Tuesday?\r\n.leading dot\r\n");
  });

  test("ESMTP parameters go with MAIL; two messages on one connection get two queue ids; RSET aborts", async () => {
    const from = scripted.events().length;
    const t = await session(at(scripted));
    await t.command("MAIL FROM:<alice@example.net> SIZE=1234");
    await t.command("RCPT TO:<bob@example.org>");
    await t.command("RSET");
    await t.command("MAIL FROM:<alice@example.net>");
    await t.command("RCPT TO:<bob@example.org>");
    await t.command("DATA");
    expect((await t.data(clean())).code).toBe(250);
    await t.command("MAIL FROM:<carol@example.net>");
    await t.command("RCPT TO:<bob@example.org>");
    await t.command("DATA");
    expect((await t.data(clean())).code).toBe(250);
    await t.command("QUIT");
    const ev = since(from);
    expect(ev.find((e) => e.ev === "mail")?.["params"]).toEqual(["SIZE=1234"]);
    expect(ev.filter((e) => e.ev === "abort").length).toBeGreaterThanOrEqual(1);
    const ids = ev.filter((e) => e.ev === "eom").map((e) => e["i"]);
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
  });
});

describe("milter: the milter's answers become SMTP replies", () => {
  test("connect: a reply code refuses the connection; tempfail likewise; accept ends the filtering", async () => {
    const refused = await session(at(scripted), { remoteIp: "192.0.2.13" });
    expect([refused.greeting?.code, refused.greeting?.text]).toEqual([550, "no mail from your network"]);
    expect(refused.closed).toBe(true);
    const later = await session(at(scripted), { remoteIp: "192.0.2.14" });
    expect(later.greeting?.code).toBe(450);
    expect(later.closed).toBe(true);
    const from = scripted.events().length;
    const { r } = await send(at(scripted), clean(), { remoteIp: "192.0.2.15" });
    expect(r.code).toBe(250);
    expect(since(from).map((e) => e.ev).filter((e) => e !== "close")).toEqual(["connect"]);
  });

  test("HELO: reject → 550, tempfail → 450", async () => {
    const t = await TestSession.start({ plugins: [at(scripted), "rcpt_ok"], config: CONFIG });
    expect(await t.command("EHLO reject.example")).toMatchObject({ code: 550, text: "Command rejected" });
    expect((await t.command("EHLO tempfail.example")).code).toBe(450);
    expect((await t.command("EHLO client.example")).code).toBe(250);
  });

  test("MAIL: its reply code (553), tempfail → 450, discard → accepted and not delivered, accept → no more stages", async () => {
    const t = await session(at(scripted));
    expect(await t.command("MAIL FROM:<refused@example.net>")).toMatchObject({ code: 553, status: "5.1.8", text: "sender refused" });
    expect((await t.command("RCPT TO:<bob@example.org>")).code).toBe(503);
    expect((await t.command("MAIL FROM:<tempfail@example.net>")).code).toBe(450);
    const dropped = await send(at(scripted), clean(), { from: "<discard@example.net>" });
    expect([dropped.r.code, dropped.r.status, dropped.r.text]).toEqual([250, "2.7.0", "Message discarded"]);
    expect(dropped.queued).toBeUndefined();
    const from = scripted.events().length;
    const waved = await send(at(scripted), mail("reject", "x"), { from: "<whitelisted@example.net>" });
    expect(waved.r.code).toBe(250); // the Subject would be rejected at the end of the message
    expect(since(from).some((e) => e.ev === "rcpt" || e.ev === "eom")).toBe(false);
  });

  test("RCPT: reject → 550, tempfail → 450, a multi-line reply code; the other recipients go on", async () => {
    const t = await session(at(scripted));
    await t.command("MAIL FROM:<alice@example.net>");
    expect(await t.command("RCPT TO:<nobody@example.org>")).toMatchObject({ code: 550, text: "Command rejected" });
    expect((await t.command("RCPT TO:<later@example.org>")).code).toBe(450);
    expect(await t.command("RCPT TO:<gone@example.org>")).toMatchObject({
      code: 550,
      lines: ["5.1.1 no such user", "5.1.1 not here either"],
    });
    expect((await t.command("RCPT TO:<bob@example.org>")).code).toBe(250);
    await t.command("DATA");
    expect((await t.data(clean())).code).toBe(250);
  });

  test("recipients another plugin accepted first reach the milter at DATA; one it refuses is dropped", async () => {
    const { r, envelope, t } = await deliver(["rcpt_ok", at(scripted)], clean(), {
      config: CONFIG,
      rcptMock: false,
      to: ["<nobody@example.org>", "<bob@example.org>"],
    });
    expect(r.code).toBe(250);
    expect(envelope?.to).toEqual(["<bob@example.org>"]);
    expect(logged(t, NAME, /refuses <nobody@example\.org> \(accepted before it by another plugin\): dropped/).length).toBe(1);
    const none = await deliver(["rcpt_ok", at(scripted)], clean(), { config: CONFIG, rcptMock: false, to: ["<nobody@example.org>"] });
    expect([none.r.code, none.queued]).toEqual([554, undefined]);
  });

  test("end of message: reply code → 554, reject → 550, tempfail → 451, discard → 250 and not delivered", async () => {
    expect((await send(at(scripted), mail("replycode", "x"))).r).toMatchObject({ code: 554, status: "5.7.0", text: "go away" });
    expect((await send(at(scripted), mail("reject", "x"))).r).toMatchObject({ code: 550, status: "5.7.1", text: "Command rejected" });
    expect((await send(at(scripted), mail("tempfail", "x"))).r).toMatchObject({ code: 451, status: "4.7.1", text: "Try again later" });
    const dropped = await send(at(scripted), mail("discard", "x"));
    expect([dropped.r.code, dropped.queued]).toEqual([250, undefined]);
    expect(logged(dropped.t, NAME, /^discarded at the milter's request/).length).toBe(1);
  });

  test("progress packets keep the stage alive; skip ends the body early", async () => {
    const slow = await send(at(scripted, "scan_timeout", "0.5"), mail("slow", "x"));
    expect(slow.r.code).toBe(250);
    expect(headerOf(slow.queued)).toMatch(/^X-Slow: done$/m);
    const from = scripted.events().length;
    const big = `${"z".repeat(99)}\n`.repeat(2000); // 200 kB: four body chunks
    expect((await send(at(scripted), mail("skip", big))).r.code).toBe(250);
    expect(since(from).filter((e) => e.ev === "body")).toHaveLength(1);
  });
});

describe("milter: end-of-message actions", () => {
  test("change sender, add and delete recipients, change/delete/insert/add header fields, replace body, quarantine", async () => {
    const message = mail("rewrite", "the old body", ["X-Drop: me"]);
    const { r, envelope, queued } = await send(at(scripted), message, { to: ["<bob@example.org>", "<removed@example.org>"] });
    expect(r.code).toBe(250);
    expect(envelope).toEqual({ from: "<new-sender@example.org>", to: ["<bob@example.org>", "<added@example.org>"] });
    const [head, ...rest] = queued!.split("\n\n");
    const names = head!.split("\n").filter((l) => !/^\s/.test(l)).map((l) => l.slice(0, l.indexOf(":")));
    expect(names[1]).toBe("X-Inserted"); // inserted at index 1
    expect(names.at(-1)).toBe("X-Quarantine");
    expect(names.at(-2)).toBe("X-Added");
    expect(head).toMatch(/^Subject: rewritten$/m);
    expect(head).not.toContain("X-Drop");
    expect(head).toMatch(/^X-Quarantine: m: held for review$/m);
    expect(rest.join("\n\n")).toBe("new body\nline two\n");
  });

  test("the quarantine reason is in a note", async () => {
    const t = await session(at(scripted));
    let note: unknown;
    t.mockHook("queue", (txn) => {
      note = txn.notes("milter_quarantine");
      return [OK, "queued"];
    });
    await t.command("MAIL FROM:<alice@example.net>");
    await t.command("RCPT TO:<bob@example.org>");
    await t.command("DATA");
    expect((await t.data(mail("rewrite", "x"))).code).toBe(250);
    expect(note).toBe("m: held for review");
  });
});

describe("milter with clamav-milter and opendkim", () => {
  test("clamav-milter rejects a virus (over a unix socket) and tags clean mail", async () => {
    const bad = await send(at(rejecting), virus());
    expect([bad.r.code, bad.queued]).toEqual([550, undefined]);
    const good = await send(at(rejecting), clean());
    expect(good.r.code).toBe(250);
    expect(headerOf(good.queued)).toMatch(/^X-Virus-Status: Clean$/m);
    expect(headerOf(good.queued)).toMatch(/^X-Virus-Scanned: clamav-milter \d/m);
    expect(logged(good.t, NAME, /^milter m: (accept|continue), \d+ ms$/).length).toBe(1);
  });

  test("clamav-milter's RejectMsg comes back as its reply code and text", async () => {
    const { r } = await send(at(replying), virus());
    expect([r.code, r.status, r.text]).toEqual([550, "5.7.1", `Virus detected: ${VIRUS_NAME}`]);
  });

  test("clamav-milter quarantines: accepted, noted, with X-Quarantine", async () => {
    const { r, queued } = await send(at(quarantining), virus());
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/^X-Quarantine: m: .+/m);
    expect(headerOf(queued)).toMatch(/^X-Virus-Status: Infected/m);
  });

  test("clamav-milter discards (Blackhole): 250 and not delivered", async () => {
    const { r, queued } = await send(at(discarding), virus());
    expect([r.code, r.text, queued]).toEqual([250, "Message discarded", undefined]);
  });

  test("opendkim inserts a DKIM-Signature at the top that verifies", async () => {
    const { r, queued } = await send(at(dkim), clean().replace("alice@example.net", "alice@example.org"), { from: "<alice@example.org>" });
    expect(r.code).toBe(250);
    expect(queued).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.org; s=test;/);
    const resolver = (name: string, type: string) =>
      name === "test._domainkey.example.org" && type === "TXT"
        ? Promise.resolve([[dkim.dnsRecord]])
        : Promise.reject(Object.assign(new Error("NXDOMAIN"), { code: "ENOTFOUND" }));
    const result = await dkimVerify(Buffer.from(queued!.replace(/\n/g, "\r\n")), { resolver });
    expect(result.results[0]?.status?.result).toBe("pass");
  });

  test("qpsmtpd check: quiet when the milter negotiates, a warning when it does not", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [at(dkim), at(rejecting)] }))).toEqual([]);
    const down = await pluginChecks(await testRegistry({ plugins: [`milter gone 127.0.0.1:${await deadPort()}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^milter: milter gone at 127\.0\.0\.1:\d+ does not answer/);
  });

  test("arguments: qpsmtpd's name and [host:]port, a path, Sendmail's inet:/unix: forms; bad ones stop start-up", async () => {
    expect((await send(`milter m inet:${dkim.port}@127.0.0.1`, clean())).r.code).toBe(250);
    expect((await send(`milter m unix:${rejecting.socket}`, virus())).r.code).toBe(550);
    await expect(testRegistry({ plugins: ["milter lonely"] })).rejects.toThrow(/missing argument \(it takes: NAME SOCKET/);
    await expect(testRegistry({ plugins: ["milter m nowhere:port"] })).rejects.toThrow(/not \[host:\]port/);
    await expect(testRegistry({ plugins: ["milter m 8891 defer_on_error maybe"] })).rejects.toThrow(/yes or no/);
  });
});

describe("milter when the milter fails", () => {
  const broken = (port: number, ...args: string[]) => send(["milter m", `127.0.0.1:${port}`, ...args].join(" "), clean());

  test("nothing listening: accepted without it, with a warning; defer_on_error yes → 450 at MAIL", async () => {
    const port = await deadPort();
    const open = await broken(port);
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /^milter m failed at mail, going on without it/)[0]?.level).toBe(LOGWARN);
    const t = await session(`milter m 127.0.0.1:${port} defer_on_error yes`);
    expect(await t.command("MAIL FROM:<alice@example.net>")).toMatchObject({
      code: 450,
      text: "Mail filter unavailable, try again later",
    });
  });

  test("a peer that hangs up: the same", async () => {
    expect((await broken(hangup.port)).r.code).toBe(250);
    const t = await session(`milter m 127.0.0.1:${hangup.port} defer_on_error yes`);
    expect((await t.command("MAIL FROM:<alice@example.net>")).code).toBe(450);
  });

  test("a peer that never answers: after scan_timeout, the same", async () => {
    const open = await broken(silent.port, "scan_timeout", "0.3");
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /no answer within the time limit|time limit reached/).length).toBeGreaterThan(0);
    const t = await session(`milter m 127.0.0.1:${silent.port} scan_timeout 0.3 defer_on_error yes`);
    expect((await t.command("MAIL FROM:<alice@example.net>")).code).toBe(450);
  });

  test("a milter that hangs at the end of the message: accepted after scan_timeout, or 451 with defer_on_error", async () => {
    const open = await send(at(scripted, "scan_timeout", "0.5"), mail("hang", "x"));
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /^milter m failed at message, going on without it: no answer within the time limit$/).length).toBe(1);
    const closed = await send(at(scripted, "scan_timeout", "0.5", "defer_on_error", "yes"), mail("hang", "x"));
    expect([closed.r.code, closed.r.status, closed.r.text]).toEqual([451, "4.3.0", "Mail filter unavailable, try again later"]);
  });

  test("a milter that hangs, and the engine's time limit on the session clock: accepted, logged", async () => {
    const clock = new FakeClock();
    const from = scripted.events().length;
    const pending = send(at(scripted, "timeout", "5"), mail("hang", "x"), { clock });
    while (!since(from).some((e) => e.ev === "eom")) await new Promise((r) => setTimeout(r, 5)); // it is hanging now
    await clock.advance(5000);
    const { r, t } = await pending;
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => /did not answer hook data_post within 5s/.test(l.message))).toBe(true);
  });

  test("clamd stopped behind clamav-milter: its tempfail → 451; clamav-milter stopped: accepted, or 450 with defer", async () => {
    await clamd.stop();
    expect((await send(at(rejecting), virus())).r.code).toBe(451);
    await rejecting.stop();
    const open = await send(at(rejecting), virus());
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /going on without it/).length).toBeGreaterThan(0);
    const t = await session(at(rejecting, "defer_on_error", "yes"));
    expect((await t.command("MAIL FROM:<alice@example.net>")).code).toBe(450);
  });
});
