/**
 * queue/smtp-forward against real next hops: a private Postfix 3.7 smtpd (Debian's postfix) with
 * STARTTLS, SMTPUTF8, DSN, CHUNKING and PIPELINING, plus listeners with one of them taken away;
 * what it received is read from its queue (postcat: envelope records, header, body) and from
 * its log of the whole SMTP dialogue. REQUIRETLS and BINARYMIME exist in no Debian MTA, so the
 * next hop for their success paths is qpsmtpd itself (this engine, with the tls plugin: real
 * STARTTLS), run in this process; Postfix gives their refusals. The failure modes (down, hanging
 * up, silent, a reply injected after STARTTLS) are fault-injecting fake peers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { OK, type PluginModule, type Transaction } from "qpsmtpd";
import { FakeClock, TestSession } from "qpsmtpd/testing";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import type { SmtpForwardOutcome } from "../../../plugins/queue/smtp-forward.ts";
import { brokenPeer } from "../../helpers/daemon.ts";
import { fakePeer, lineScript, refusingPort } from "../../helpers/fake_peers.ts";
import { type PostfixSmtpd, postfixSmtpdUsable, startPostfixSmtpd } from "../../helpers/postfix_smtpd.ts";
import { type RunningServer, startServer } from "../../helpers/server.ts";

const FIXTURE_TLS = join(import.meta.dir, "../../fixtures/tls");
/** The tls plugin for the client side of a TestSession (the harness fakes that handshake). */
const CLIENT_TLS = `tls ${FIXTURE_TLS}/server.crt ${FIXTURE_TLS}/server.key`;

let pf: PostfixSmtpd;
/** What the qpsmtpd next hop queued. */
interface Got {
  readonly options: ReturnType<Transaction["mail_options"]>;
  readonly rcpts: string[];
  readonly message: Buffer;
}
const got: Got[] = [];
const recorder: PluginModule = {
  hook_rcpt: () => OK,
  hook_queue: async (txn) => {
    const parts: Uint8Array[] = [];
    for await (const c of txn.message_stream()) parts.push(c);
    got.push({ options: txn.mail_options(), rcpts: txn.recipients().map((r) => r.format()), message: Buffer.concat(parts) });
    return [OK, "qpsmtpd-next-hop-id"];
  },
};
let qp: RunningServer;

beforeAll(async () => {
  qp = await startServer({ plugins: [CLIENT_TLS, "recorder"], modules: { recorder } });
  if (!postfixSmtpdUsable) return;
  pf = await startPostfixSmtpd({
    listeners: {
      mx: [],
      plain: ["smtpd_tls_security_level=none"],
      noutf8: ["smtputf8_enable=no"],
      basic: ["smtpd_discard_ehlo_keywords=chunking,dsn,pipelining"],
      // Only TLS 1.0 and 1.1, which the client refuses: every handshake fails.
      oldtls: ["smtpd_tls_protocols=!TLSv1.2,!TLSv1.3"],
    },
    main: `smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access inline:{ {refused@example.net=550 5.7.1 sender refused} }
smtpd_recipient_restrictions = check_recipient_access inline:{ {perm@=550 5.1.1 no such user}, {perm2@=550 5.1.1 no such user either}, {temp@=450 4.2.0 try later} }, permit_mynetworks, reject
header_checks = regexp:@DIR@/header_checks`,
    files: { header_checks: "/^Subject: reject/ REJECT content refused\n" },
    sniNames: ["sni.example.org"],
  });
}, 60_000);
afterAll(async () => {
  await pf?.stop();
  await qp?.stop();
}, 30_000);

/** Sends a command line as UTF-8 and returns its reply. */
async function say(t: TestSession, line: string) {
  const r = await t.send(Buffer.from(`${line}\r\n`, "utf8"));
  return r[r.length - 1]!;
}

interface Forward {
  /** MAIL FROM's argument and parameters. */
  readonly from?: string;
  readonly to: readonly string[];
  readonly message?: string;
  /** The client uses STARTTLS first (REQUIRETLS needs it). */
  readonly clientTls?: boolean;
}

/** One message through a TestSession whose queue plugin is `plugin`. */
async function forward(plugin: string, f: Forward) {
  const t = await TestSession.start({ plugins: f.clientTls ? [CLIENT_TLS, plugin] : [plugin] });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  if (f.clientTls) {
    expect((await t.command("STARTTLS")).code).toBe(220);
    await t.command("EHLO c");
  }
  expect(await say(t, `MAIL FROM:${f.from ?? "<s@example.net>"}`)).toMatchObject({ code: 250 });
  for (const r of f.to) expect(await say(t, `RCPT TO:${r}`)).toMatchObject({ code: 250 });
  // The transaction ends with the queue stage: keep it to read its notes afterwards.
  const txn = t.transaction;
  expect((await t.command("DATA")).code).toBe(354);
  const body = (f.message ?? "Subject: test\n\nhello\n").replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
  const replies = await t.send(Buffer.from(`${body}.\r\n`, "utf8"));
  return { r: replies[replies.length - 1]!, t, txn };
}

const mx = (opts = "") => `queue/smtp-forward 127.0.0.1 ${pf.ports.mx} ${opts}`.trim();
const at = (listener: string, opts = "") => `queue/smtp-forward 127.0.0.1 ${pf.ports[listener]} ${opts}`.trim();
const verified = () => `tls verify tls_ca ${pf.certFile} tls_name mx.example.org`;
const logs = (t: TestSession) => t.logs.filter((l) => l.plugin === "queue::smtp_2dforward").map((l) => l.message);
/** The commands the client sent in a Postfix session. */
const commands = (session: string[]) => session.filter((l) => l.startsWith("< ")).map((l) => l.replace(/^< [^:]*: /, ""));

/**
 * Waits until Postfix has logged `n` more finished sessions than `before` (so that checking what
 * they did not do is not vacuous), and returns those sessions.
 */
async function settled(before: number, n: number): Promise<string[][]> {
  const until = Date.now() + 10_000;
  while (pf.sessions().length < before + n) {
    if (Date.now() > until) throw new Error(`postfix logged ${pf.sessions().length - before} of ${n} sessions`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return pf.sessions().slice(before);
}

/** The queued message whose envelope sender is `sender`, with its postcat output. */
async function queued(sender: string, n = 1) {
  const q = await pf.waitForQueue(n);
  const m = q.find((x) => x.sender === sender);
  expect(m).toBeDefined();
  return { ...m!, content: await pf.content(m!.queue_id) };
}

describe.skipIf(!postfixSmtpdUsable)("queue/smtp-forward to Postfix", () => {
  test("relays over opportunistic STARTTLS with BDAT; the next hop's reply is in the 250; every recipient noted", async () => {
    await pf.reset();
    const { r, t, txn } = await forward(mx(), {
      from: "<relay1@example.net>",
      to: ["<a@example.org>", "<b@example.org>"],
      message: "Subject: fwd\n\n.leading dot\nline\n",
    });
    expect(r.code).toBe(250);
    expect(r.text).toMatch(/Queued: .*queued as [0-9A-F]+/);
    const session = await pf.session("relay1@example.net");
    expect(session.some((l) => l.startsWith("Anonymous TLS connection established"))).toBe(true);
    const sent = commands(session);
    expect(sent.slice(0, 3)).toEqual(["EHLO vm", "STARTTLS", "EHLO vm"].map((c) => c.replace("vm", t.qp.me)));
    expect(sent).toContain("MAIL FROM:<relay1@example.net> BODY=8BITMIME");
    expect(sent.some((c) => /^BDAT \d+ LAST$/.test(c))).toBe(true);
    expect(sent).not.toContain("DATA");
    const m = await queued("relay1@example.net");
    expect(m.recipients).toEqual(["a@example.org", "b@example.org"]);
    // No dot-stuffing with BDAT, and none undone: the line arrives as it was.
    expect(m.content).toMatch(/\nSubject: fwd\n(?:.*\n)*?\n\.leading dot\nline\n\*\*\* HEADER EXTRACTED/);
    const notes = txn.notes("smtp_forward") as SmtpForwardOutcome[];
    expect(notes.map((n) => [n.recipient, n.status])).toEqual([["<a@example.org>", "delivered"], ["<b@example.org>", "delivered"]]);
    expect(notes[0]!.reply).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as/);
    expect(txn.recipients()[1]!.notes("smtp_forward")?.status).toBe("delivered");
    expect(logs(t).some((l) => l.startsWith("TLS with 127.0.0.1: TLSv1.") && l.includes("certificate not verified"))).toBe(true);
    expect(logs(t).filter((l) => / delivered at 127\.0\.0\.1: 250 /.test(l)).length).toBe(2);
  });

  test("BDAT in chunks of chunk_size bytes, the last one LAST, exact counts", async () => {
    await pf.reset();
    const body = Array.from({ length: 40 }, (_, i) => `line ${i} ${"x".repeat(i)}`).join("\n");
    const { r } = await forward(mx("chunk_size 500"), {
      from: "<chunks@example.net>",
      to: ["<a@example.org>"],
      message: `Subject: c\n\n${body}\n`,
    });
    expect(r.code).toBe(250);
    const bdat = commands(await pf.session("chunks@example.net")).filter((c) => c.startsWith("BDAT "));
    expect(bdat.length).toBeGreaterThan(2);
    expect(bdat.slice(0, -1).every((c) => c === "BDAT 500")).toBe(true);
    expect(bdat[bdat.length - 1]).toMatch(/^BDAT \d+ LAST$/);
    const m = await queued("chunks@example.net");
    expect(m.content).toContain(`\n\n${body}\n*** HEADER EXTRACTED`);
  });

  test("no CHUNKING, DSN or PIPELINING offered: DATA with dot-stuffing, one command at a time, no DSN parameters", async () => {
    await pf.reset();
    const { r } = await forward(at("basic"), {
      from: "<basic@example.net> RET=FULL ENVID=e1",
      to: ["<a@example.org> NOTIFY=FAILURE ORCPT=rfc822;a@example.org"],
      message: "Subject: d\n\n.dot\n..two\n",
    });
    expect(r.code).toBe(250);
    const sent = commands(await pf.session("basic@example.net"));
    expect(sent).toContain("MAIL FROM:<basic@example.net> BODY=8BITMIME");
    expect(sent).toContain("RCPT TO:<a@example.org>");
    expect(sent).toContain("DATA");
    const m = await queued("basic@example.net");
    expect(m.content).toContain("\n\n.dot\n..two\n*** HEADER EXTRACTED");
    expect(m.content).not.toContain("envelope_id=");
  });

  test("chunking 0 sends with DATA although CHUNKING is offered", async () => {
    await pf.reset();
    const { r } = await forward(mx("chunking 0"), { from: "<nochunk@example.net>", to: ["<a@example.org>"] });
    expect(r.code).toBe(250);
    const sent = commands(await pf.session("nochunk@example.net"));
    expect(sent).toContain("DATA");
    expect(sent.some((c) => c.startsWith("BDAT"))).toBe(false);
  });

  test("DSN parameters reach a next hop that offers DSN: RET, ENVID (xtext), NOTIFY, ORCPT", async () => {
    await pf.reset();
    const { r } = await forward(mx(), {
      from: "<dsn@example.net> RET=HDRS ENVID=id+2B1",
      to: ["<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Ba@example.org", "<b@example.org> NOTIFY=NEVER"],
    });
    expect(r.code).toBe(250);
    const sent = commands(await pf.session("dsn@example.net"));
    expect(sent).toContain("MAIL FROM:<dsn@example.net> BODY=8BITMIME RET=HDRS ENVID=id+2B1");
    expect(sent).toContain("RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Ba@example.org");
    expect(sent).toContain("RCPT TO:<b@example.org> NOTIFY=NEVER");
    const m = await queued("dsn@example.net");
    // Postfix's records: RET=HDRS is 2; NOTIFY SUCCESS|FAILURE is 2|4, NEVER is 1.
    expect(m.content).toContain("envelope_id=id+1");
    expect(m.content).toContain("ret_flags=2");
    expect(m.content).toContain("notify_flags=6");
    expect(m.content).toContain("dsn_orig_rcpt=rfc822;orig+a@example.org");
    expect(m.content).toContain("notify_flags=1");
  });

  test("SMTPUTF8: passed on with UTF-8 addresses written as UTF-8", async () => {
    await pf.reset();
    const { r, txn } = await forward(mx(), {
      from: "<jörg@example.net> SMTPUTF8",
      to: ["<用户@例子.example>"],
      message: "Subject: grüße\n\nhi\n",
    });
    expect(r.code).toBe(250);
    expect(commands(await pf.session("jörg@example.net"))).toContain("MAIL FROM:<jörg@example.net> BODY=8BITMIME SMTPUTF8");
    const m = await queued("jörg@example.net");
    expect(m.recipients).toEqual(["用户@例子.example"]);
    expect(m.content).toContain("Subject: grüße");
    expect(txn.notes("smtp_forward")?.[0]?.status).toBe("delivered");
  });

  test("SMTPUTF8 needed and not offered → 552 5.6.7, nothing sent; declared but not needed → sent without it", async () => {
    await pf.reset();
    const utf8Rcpt = await forward(at("noutf8"), { from: "<u1@example.net> SMTPUTF8", to: ["<用户@example.org>"] });
    expect(utf8Rcpt.r.code).toBe(552);
    expect(utf8Rcpt.r.status).toBe("5.6.7");
    const utf8Header = await forward(at("noutf8"), {
      from: "<u2@example.net> SMTPUTF8",
      to: ["<a@example.org>"],
      message: "Subject: grüße\n\nx\n",
    });
    expect(utf8Header.r.code).toBe(552);
    expect(utf8Header.r.status).toBe("5.6.7");
    const ascii = await forward(at("noutf8"), {
      from: "<u3@example.net> SMTPUTF8",
      to: ["<a@example.org>"],
      message: "Subject: plain\n\nx\n",
    });
    expect(ascii.r.code).toBe(250);
    expect(commands(await pf.session("u3@example.net"))).toContain("MAIL FROM:<u3@example.net> BODY=8BITMIME");
    // Logged in order: the sessions before u3's are in the log, and none got as far as MAIL.
    expect(pf.sessions().some((s) => s.some((l) => /MAIL FROM:<u[12]@/.test(l)))).toBe(false);
    expect((await pf.queue()).map((m) => m.sender)).toEqual(["u3@example.net"]);
  });

  test("some recipients refused: delivered to the others, OK, per-recipient notes, and a DSN to the sender through the next hop", async () => {
    await pf.reset();
    const { r, t, txn } = await forward(mx(), {
      from: "<mixed@example.net> ENVID=env-7",
      to: ["<a@example.org>", "<perm@example.org> ORCPT=rfc822;perm@example.org", "<temp@example.org>"],
      message: "Subject: mixed\n\nsecret body\n",
    });
    expect(r.code).toBe(250);
    expect(r.text).toContain("delivered to 1 of 3 recipients");
    const notes = txn.notes("smtp_forward")!;
    expect(notes.map((n) => [n.recipient, n.status])).toEqual([
      ["<a@example.org>", "delivered"],
      ["<perm@example.org>", "refused"],
      ["<temp@example.org>", "deferred"],
    ]);
    expect(notes[1]!.reply).toContain("550 5.1.1");
    expect(txn.recipients()[2]!.notes("smtp_forward")?.reply).toContain("450 4.2.0");
    expect(logs(t).some((l) => l.startsWith("<perm@example.org> refused at 127.0.0.1: 550 5.1.1"))).toBe(true);
    expect(logs(t).some((l) => l.startsWith("<temp@example.org> deferred at 127.0.0.1: 450 4.2.0"))).toBe(true);
    expect(
      logs(t).some((l) =>
        l.startsWith("delivery status notification to <mixed@example.net> for <perm@example.org>, <temp@example.org> sent")
      ),
    ).toBe(true);
    const q = await pf.waitForQueue(2);
    expect(q.find((m) => m.sender === "mixed@example.net")?.recipients).toEqual(["a@example.org"]);
    const dsn = await queued("MAILER-DAEMON", 2);
    expect(dsn.recipients).toEqual(["mixed@example.net"]);
    const c = dsn.content;
    expect(c).toContain(`From: Mail Delivery System <MAILER-DAEMON@${t.qp.me}>`);
    expect(c).toMatch(/Content-Type: multipart\/report; report-type=delivery-status;/);
    expect(c).toContain("Content-Type: message/delivery-status");
    expect(c).toContain("Original-Envelope-Id: env-7");
    expect(c).toContain(
      "Final-Recipient: rfc822; perm@example.org\nOriginal-Recipient: rfc822; perm@example.org\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1",
    );
    expect(c).toContain("Final-Recipient: rfc822; temp@example.org\nAction: failed\nStatus: 4.2.0");
    expect(c).toContain("not retried");
    // No RET: the header comes back, not the body.
    expect(c).toContain("Content-Type: text/rfc822-headers");
    expect(c).toContain("Subject: mixed");
    expect(c).not.toContain("secret body");
    expect(c).not.toContain("a@example.org");
    const sent = commands(await pf.session("mixed@example.net"));
    expect(sent).toContain("MAIL FROM:<> BODY=8BITMIME");
  });

  test("RET=FULL returns the whole message; NOTIFY=NEVER and NOTIFY=SUCCESS get no failure report", async () => {
    await pf.reset();
    const full = await forward(mx(), {
      from: "<full@example.net> RET=FULL",
      to: ["<a@example.org>", "<perm@example.org> NOTIFY=FAILURE,DELAY", "<perm2@example.org> NOTIFY=NEVER"],
      message: "Subject: full\n\nthe body comes back\n",
    });
    expect(full.r.code).toBe(250);
    const dsn = await queued("MAILER-DAEMON", 2);
    expect(dsn.content).toContain("Content-Type: message/rfc822");
    expect(dsn.content).toContain("the body comes back");
    expect(dsn.content).toContain("Final-Recipient: rfc822; perm@example.org");
    expect(dsn.content).not.toContain("perm2@example.org");
    await pf.reset();
    const never = await forward(mx(), {
      from: "<never@example.net>",
      to: ["<a@example.org>", "<perm@example.org> NOTIFY=NEVER", "<perm2@example.org> NOTIFY=SUCCESS"],
    });
    expect(never.r.code).toBe(250);
    expect(logs(never.t).some((l) => l === "<perm@example.org>: no delivery status notification (NOTIFY=NEVER)")).toBe(true);
    expect(logs(never.t).some((l) => l === "<perm2@example.org>: no delivery status notification (NOTIFY=SUCCESS)")).toBe(true);
    await pf.session("never@example.net");
    expect((await pf.queue()).map((m) => m.sender)).toEqual(["never@example.net"]);
  });

  test("a next hop without DSN: a relayed report for NOTIFY=SUCCESS recipients", async () => {
    await pf.reset();
    const { r, t } = await forward(at("basic"), {
      from: "<relayed@example.net>",
      to: ["<a@example.org> NOTIFY=SUCCESS", "<b@example.org>"],
    });
    expect(r.code).toBe(250);
    expect(r.text).not.toContain("delivered to");
    const dsn = await queued("MAILER-DAEMON", 2);
    expect(dsn.recipients).toEqual(["relayed@example.net"]);
    expect(dsn.content).toContain("Final-Recipient: rfc822; a@example.org\nAction: relayed\nStatus: 2.0.0");
    expect(dsn.content).not.toContain("b@example.org");
    expect(logs(t).some((l) => l.startsWith("delivery status notification to <relayed@example.net> for <a@example.org> sent"))).toBe(true);
  });

  test("mixed result from the null sender: no report, logged, still 250", async () => {
    await pf.reset();
    const { r, t } = await forward(mx(), { from: "<>", to: ["<nullsender@example.org>", "<perm@example.org>"] });
    expect(r.code).toBe(250);
    expect(logs(t)).toContain("no delivery status notification for <perm@example.org>: the sender is <>");
    const q = await pf.waitForQueue(1);
    expect(q.map((m) => m.recipients)).toEqual([["nullsender@example.org"]]);
  });

  test("refusals: every recipient 5xx, the sender, or the content → 552 with the next hop's text; every recipient 4xx → 451", async () => {
    await pf.reset();
    const rcpts = await forward(mx(), { to: ["<perm@example.org>", "<perm2@example.org>"] });
    expect(rcpts.r.code).toBe(552);
    expect(rcpts.r.status).toBe("5.1.1");
    expect(rcpts.r.text).toMatch(/^every recipient refused by 127\.0\.0\.1: 550 5\.1\.1 .*no such user/);
    expect((rcpts.txn.notes("smtp_forward") ?? []).map((n) => n.status)).toEqual(["refused", "refused"]);
    const sender = await forward(mx(), { from: "<refused@example.net>", to: ["<a@example.org>"] });
    expect(sender.r.code).toBe(552);
    expect(sender.r.status).toBe("5.7.1");
    expect(sender.r.text).toMatch(/^sender refused by 127\.0\.0\.1: 550 5\.7\.1 .*sender refused$/);
    const content = await forward(mx(), { to: ["<a@example.org>"], message: "Subject: reject me\n\nx\n" });
    expect(content.r.code).toBe(552);
    expect(content.r.text).toContain("content refused");
    const temp = await forward(mx(), { to: ["<temp@example.org>"] });
    expect(temp.r.code).toBe(451);
    expect(logs(temp.t).some((l) => l.includes("failed, the message stays with the sender"))).toBe(true);
    expect(temp.txn.notes("smtp_forward")?.[0]?.status).toBe("deferred");
    expect(await pf.queue()).toEqual([]);
  });

  test("tls required: 451 from a next hop without STARTTLS, delivered over TLS otherwise", async () => {
    await pf.reset();
    const plain = await forward(at("plain", "tls required"), { from: "<req1@example.net>", to: ["<a@example.org>"] });
    expect(plain.r.code).toBe(451);
    expect(logs(plain.t).some((l) => l.includes("does not offer STARTTLS (tls required)"))).toBe(true);
    const tls = await forward(mx("tls required"), { from: "<req2@example.net>", to: ["<a@example.org>"] });
    expect(tls.r.code).toBe(250);
    expect((await pf.session("req2@example.net")).some((l) => l.startsWith("Anonymous TLS connection established"))).toBe(true);
    expect((await pf.queue()).map((m) => m.sender)).toEqual(["req2@example.net"]);
  });

  test("opportunistic TLS: in clear without STARTTLS; a failed handshake is retried in clear", async () => {
    await pf.reset();
    const plain = await forward(at("plain"), { from: "<opp1@example.net>", to: ["<a@example.org>"] });
    expect(plain.r.code).toBe(250);
    expect(logs(plain.t)).toContain("127.0.0.1 does not offer STARTTLS; sending in clear");
    const old = await forward(at("oldtls"), { from: "<opp2@example.net>", to: ["<a@example.org>"] });
    expect(old.r.code).toBe(250);
    expect(logs(old.t).some((l) => /^TLS with 127\.0\.0\.1: TLS handshake failed.*; sending in clear \(tls opportunistic\)$/.test(l))).toBe(
      true,
    );
    expect(commands(await pf.session("opp2@example.net"))).not.toContain("STARTTLS");
    const required = await forward(at("oldtls", "tls required"), { from: "<opp3@example.net>", to: ["<a@example.org>"] });
    expect(required.r.code).toBe(451);
    expect((await pf.queue()).map((m) => m.sender).sort()).toEqual(["opp1@example.net", "opp2@example.net"]);
  });

  test("tls verify: the self-signed certificate fails; with tls_ca it passes, but only for the name it carries", async () => {
    await pf.reset();
    const system = await forward(mx("tls verify tls_name mx.example.org"), { from: "<v1@example.net>", to: ["<a@example.org>"] });
    expect(system.r.code).toBe(451);
    expect(logs(system.t).some((l) => l.includes("certificate not verified") && l.includes("(tls verify)"))).toBe(true);
    const wrongName = await forward(mx(`tls verify tls_ca ${pf.certFile}`), { from: "<v2@example.net>", to: ["<a@example.org>"] });
    expect(wrongName.r.code).toBe(451);
    const ok = await forward(mx(verified()), { from: "<v3@example.net>", to: ["<a@example.org>"] });
    expect(ok.r.code).toBe(250);
    expect(logs(ok.t).some((l) => l.startsWith("TLS with 127.0.0.1: TLSv1.") && l.endsWith("certificate verified"))).toBe(true);
    expect((await pf.queue()).map((m) => m.sender)).toEqual(["v3@example.net"]);
  });

  test("SNI is tls_name: the next hop presents the certificate for that name", async () => {
    await pf.reset();
    const sni = await forward(mx(`tls verify tls_ca ${pf.sniCertFiles["sni.example.org"]} tls_name sni.example.org`), {
      from: "<sni@example.net>",
      to: ["<a@example.org>"],
    });
    expect(sni.r.code).toBe(250);
    // The same CA, without SNI (an IP address as the name), gets the default certificate: not verified.
    const ip = await forward(mx(`tls verify tls_ca ${pf.sniCertFiles["sni.example.org"]}`), { to: ["<a@example.org>"] });
    expect(ip.r.code).toBe(451);
  });

  test("REQUIRETLS: Postfix does not offer it → 552 5.7.30, also with TLS-Required: No; no STARTTLS or an unverified certificate → 5.7.30", async () => {
    await pf.reset();
    const before = pf.sessions().length;
    const noExt = await forward(mx(verified()), { clientTls: true, from: "<rt1@example.net> REQUIRETLS", to: ["<a@example.org>"] });
    expect(noExt.r.code).toBe(552);
    expect(noExt.r.status).toBe("5.7.30");
    expect(noExt.r.text).toMatch(/^REQUIRETLS support required: .*does not offer REQUIRETLS/);
    const header = await forward(mx(verified()), {
      clientTls: true,
      from: "<rt2@example.net> REQUIRETLS",
      to: ["<a@example.org>"],
      message: "TLS-Required: No\nSubject: x\n\ny\n",
    });
    expect(header.r.code).toBe(552);
    expect(header.r.status).toBe("5.7.30");
    const plain = await forward(at("plain"), { clientTls: true, from: "<rt3@example.net> REQUIRETLS", to: ["<a@example.org>"] });
    expect(plain.r.code).toBe(552);
    expect(plain.r).toMatchObject({ status: "5.7.30" });
    expect(plain.r.text).toContain("does not offer STARTTLS");
    // `tls opportunistic` is not enough: REQUIRETLS verifies the certificate (self-signed here).
    const unverified = await forward(mx(), { clientTls: true, from: "<rt4@example.net> REQUIRETLS", to: ["<a@example.org>"] });
    expect(unverified.r.code).toBe(552);
    expect(unverified.r.text).toContain("certificate not verified");
    expect(await pf.queue()).toEqual([]);
    const last = await settled(before, 4);
    expect(last.some((s) => s.some((l) => l.includes("MAIL FROM:")))).toBe(false);
  });

  test("a UTF-8 message partly refused: the report uses the global types (RFC 6533) and goes with SMTPUTF8", async () => {
    await pf.reset();
    const { r, t } = await forward(mx(), { from: "<renée@example.net> SMTPUTF8", to: ["<a@example.org>", "<perm@例子.example>"] });
    expect(r.code).toBe(250);
    const dsn = await queued("MAILER-DAEMON", 2);
    expect(dsn.recipients).toEqual(["renée@example.net"]);
    expect(dsn.content).toContain("report-type=global-delivery-status");
    expect(dsn.content).toContain("Content-Type: message/global-delivery-status");
    expect(dsn.content).toContain("Final-Recipient: utf-8; perm@例子.example");
    expect(dsn.content).toContain("Content-Type: message/global-headers");
    expect(commands(await pf.session("renée@example.net"))).toContain("MAIL FROM:<> BODY=8BITMIME SMTPUTF8");
    expect(logs(t).some((l) => l.includes("delivery status notification to <renée@example.net>") && l.includes(" sent: 250"))).toBe(true);
  });

  test("a report the next hop refuses is logged, and the reply is still 250 (the others have the message)", async () => {
    await pf.reset();
    // `perm@` is refused as a recipient: here it is the sender, who then cannot get the report.
    const { r, t } = await forward(mx(), { from: "<perm@example.net>", to: ["<a@example.org>", "<perm2@example.org>"] });
    expect(r.code).toBe(250);
    expect(r.text).toContain("delivered to 1 of 2 recipients");
    expect(
      logs(t).some((l) =>
        /^delivery status notification to <perm@example\.net> for <perm2@example\.org> not sent: 127\.0\.0\.1 answered 550 5\.1\.1/.test(l)
      ),
    )
      .toBe(true);
    await pf.session("perm@example.net");
    expect((await pf.queue()).map((m) => m.sender)).toEqual(["perm@example.net"]);
  });

  test("a next hop that refuses at its greeting → 451", async () => {
    const peer = await fakePeer(lineScript("554 5.3.2 not accepting mail\r\n", []));
    try {
      const { r, t } = await forward(`queue/smtp-forward 127.0.0.1 ${peer.port}`, { to: ["<a@example.org>"] });
      expect(r.code).toBe(451);
      expect(logs(t).some((l) => l.endsWith("greeting 554 5.3.2 not accepting mail"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("check(): quiet for a next hop that answers; a warning when it is down or lacks STARTTLS for tls required", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [mx()] }))).toEqual([]);
    const noTls = await pluginChecks(await testRegistry({ plugins: [at("plain", "tls required")] }));
    expect(noTls).toEqual([`queue/smtp-forward: the next hop 127.0.0.1:${pf.ports.plain} does not offer STARTTLS (tls required)`]);
    const port = await refusingPort();
    const down = await pluginChecks(await testRegistry({ plugins: [`queue/smtp-forward 127.0.0.1 ${port}`] }));
    expect(down).toHaveLength(1);
    expect(down[0]).toContain("does not answer");
  });

  test("BODY=BINARYMIME to a next hop without BINARYMIME → 552 5.6.3, nothing sent", async () => {
    const t = await TestSession.start({ plugins: [mx()] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<bin@example.net> BODY=BINARYMIME")).code).toBe(250);
    await t.command("RCPT TO:<a@example.org>");
    const msg = Buffer.concat([Buffer.from("Subject: bin\r\n\r\n"), Buffer.from([0, 1, 2, 13, 10, 255])]);
    const r = await t.send(Buffer.concat([Buffer.from(`BDAT ${msg.length} LAST\r\n`), msg]));
    expect(r[r.length - 1]!.code).toBe(552);
    expect(r[r.length - 1]!.status).toBe("5.6.3");
  });
});

describe("queue/smtp-forward to qpsmtpd (REQUIRETLS and BINARYMIME, which no Debian MTA offers)", () => {
  const toQp = (opts = "") => `queue/smtp-forward 127.0.0.1 ${qp.port} tls_ca ${FIXTURE_TLS}/server.crt tls_name localhost ${opts}`.trim();

  test("REQUIRETLS: over verified TLS to a next hop that offers it, with REQUIRETLS on MAIL", async () => {
    got.length = 0;
    const { r, t } = await forward(toQp(), { clientTls: true, from: "<rt@example.net> REQUIRETLS", to: ["<a@example.org>"] });
    expect(r.code).toBe(250);
    expect(r.text).toContain("qpsmtpd-next-hop-id");
    expect(got.length).toBe(1);
    expect(got[0]!.options.requiretls).toBe(true);
    expect(logs(t).some((l) => l.includes("certificate verified"))).toBe(true);
  });

  test("BINARYMIME: sent by BDAT, the body byte for byte", async () => {
    got.length = 0;
    const t = await TestSession.start({ plugins: [toQp("chunk_size 7")] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<bin@example.net> BODY=BINARYMIME")).code).toBe(250);
    await t.command("RCPT TO:<a@example.org>");
    const body = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));
    const msg = Buffer.concat([Buffer.from("Subject: bin\r\n\r\n"), body]);
    const r = await t.send(Buffer.concat([Buffer.from(`BDAT ${msg.length} LAST\r\n`), msg]));
    expect(r[r.length - 1]!.code).toBe(250);
    expect(got.length).toBe(1);
    expect(got[0]!.options.body).toBe("BINARYMIME");
    const m = got[0]!.message;
    const start = m.indexOf("\n\n") + 2;
    expect(m.subarray(0, start).toString()).toContain("Subject: bin\n");
    expect(Buffer.compare(m.subarray(start), body)).toBe(0);
  });
});

describe("queue/smtp-forward failure modes", () => {
  test("a next hop that is down → 451 with a log line; every recipient deferred", async () => {
    const port = await refusingPort();
    const { r, t, txn } = await forward(`queue/smtp-forward 127.0.0.1 ${port}`, { to: ["<a@example.org>"] });
    expect(r.code).toBe(451);
    expect(
      logs(t).some((l) =>
        l.startsWith(`forwarding to 127.0.0.1:${port} failed, the message stays with the sender: `) && l.includes("ECONNREFUSED")
      ),
    ).toBe(true);
    expect(txn.notes("smtp_forward")?.[0]).toMatchObject({ recipient: "<a@example.org>", status: "deferred" });
  });

  test("a next hop that hangs up at once → 451", async () => {
    const peer = await brokenPeer("hangup");
    try {
      const { r, t } = await forward(`queue/smtp-forward 127.0.0.1 ${peer.port}`, { to: ["<a@example.org>"] });
      expect(r.code).toBe(451);
      expect(peer.accepted).toBe(1);
      expect(logs(t).some((l) => l.includes("failed, the message stays with the sender"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("a silent next hop: the plugin's time limit (session clock) gives 451 and closes the connection", async () => {
    const peer = await fakePeer();
    try {
      const clock = new FakeClock();
      const t = await TestSession.start({ clock, plugins: [`queue/smtp-forward 127.0.0.1 ${peer.port} timeout 5`] });
      t.mockHook("rcpt", () => OK);
      await t.command("EHLO c");
      await t.command("MAIL FROM:<s@example.net>");
      await t.command("RCPT TO:<a@example.org>");
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

  test("smtp_timeout bounds each reply: a silent next hop → 451, logged", async () => {
    const peer = await fakePeer();
    try {
      const { r, t } = await forward(`queue/smtp-forward 127.0.0.1 ${peer.port} smtp_timeout 0.2`, { to: ["<a@example.org>"] });
      expect(r.code).toBe(451);
      expect(logs(t).some((l) => l.includes("timed out waiting for a reply"))).toBe(true);
    } finally {
      await peer.close();
    }
  });

  test("a reply injected after the 220 to STARTTLS is not taken: 451 with tls required", async () => {
    const peer = await fakePeer(lineScript("220 mx\r\n", ["250-mx\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 injected\r\n"]));
    try {
      const { r, t } = await forward(`queue/smtp-forward 127.0.0.1 ${peer.port} tls required`, { to: ["<a@example.org>"] });
      expect(r.code).toBe(451);
      expect(logs(t).some((l) => l.includes("the server sent data after its STARTTLS reply"))).toBe(true);
      expect(peer.received[0]).not.toContain("MAIL FROM");
    } finally {
      await peer.close();
    }
  });

  test("qpsmtpd's xclient flag is accepted with a warning; bad arguments stop the load", async () => {
    // (The warning is logged at load time, before a session has a log to look at.)
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example 25 xclient tls no"] })).resolves.toBeDefined();
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example 25 tls no xclient"] })).rejects.toThrow();
    await expect(TestSession.start({ plugins: ["queue/smtp-forward"] })).rejects.toThrow("needs the next hop's host");
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example 99999"] })).rejects.toThrow('bad port "99999"');
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example tls maybe"] })).rejects.toThrow("tls is one of");
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example 25 tls_ca /nonexistent.pem"] })).rejects.toThrow(
      "cannot read tls_ca",
    );
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example colour blue"] })).rejects.toThrow('unknown option "colour"');
    await expect(TestSession.start({ plugins: ["queue/smtp-forward h.example chunk_size 0"] })).rejects.toThrow("bad chunk_size");
  });
});
