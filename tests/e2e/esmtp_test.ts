/**
 * The ESMTP extensions end to end against dist/qpsmtpd, with real clients: Perl's Net::SMTP for
 * BDAT, Python's smtplib for SMTPUTF8, swaks for XCLIENT, and a raw socket for pipelined and
 * hostile chunks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configDir, type Daemon, RawClient, run, startDaemon, swaks } from "./helpers.ts";

const running: Daemon[] = [];
afterAll(async () => {
  for (const d of running) d.proc.kill("SIGKILL");
});

async function mx(extra: Record<string, string> = {}): Promise<{ d: Daemon; maildir: string }> {
  const maildir = join(mkdtempSync(join(tmpdir(), "qpesmtp-")), "Maildir");
  const dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\nbücher.example\n",
    plugins: `rcpt_ok\nqueue/maildir ${maildir}\n`,
    logging: "logging/warn LOGINFO\n",
    ...extra,
  });
  const d = await startDaemon(dir);
  running.push(d);
  return { d, maildir };
}

const delivered = (maildir: string): string[] =>
  existsSync(join(maildir, "new")) ? readdirSync(join(maildir, "new")).map((f) => readFileSync(join(maildir, "new", f), "latin1")) : [];

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

describe("BDAT", () => {
  test("Perl's Net::SMTP (BODY=BINARYMIME) sends with bdat and bdatlast: the body delivered byte for byte", async () => {
    const { d, maildir } = await mx();
    const perl = `
use Net::SMTP;
my $s = Net::SMTP->new("127.0.0.1", Port => ${d.port}, Hello => "perl.example", Timeout => 20) or die "connect";
die "no CHUNKING" unless defined $s->supports("CHUNKING");
$s->mail("a\\@example.net", Bits => "binary") or die "mail";
$s->to("user\\@example.org") or die "rcpt";
$s->bdat("Subject: by chunks\\r\\n\\r\\nfirst chunk\\r\\n") or die "bdat";
$s->bdat(".a line with a dot\\r\\nsecond ") or die "bdat2";
$s->bdatlast("chunk\\r\\n") or die "bdatlast: " . $s->message;
print "LAST ", $s->code, " ", $s->message;
$s->quit;
`;
    const r = await run(["perl", "-e", perl]);
    expect(r.out).toContain("LAST 250 2.0.0 Queued");
    const msgs = delivered(maildir);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toContain("Subject: by chunks\n");
    // A binary body is kept as it came, CR LF included; the header is text.
    expect(msgs[0]).toEndWith("Subject: by chunks\n\nfirst chunk\r\n.a line with a dot\r\nsecond chunk\r\n");
  });

  test("pipelined chunks; a smuggled end of data inside a chunk is only data", async () => {
    const { d, maildir } = await mx();
    const c = await RawClient.connect(d.port);
    expect((await c.reply()).code).toBe(220);
    c.write("EHLO raw.example\r\n");
    await c.reply();
    const chunk1 = "Subject: smuggle\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@evil.test>\r\nRCPT TO:<victim@evil.test>\r\nDATA\r\n";
    const chunk2 = "more\r\n";
    c.write(
      `MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nBDAT ${chunk1.length}\r\n${chunk1}BDAT ${chunk2.length} LAST\r\n${chunk2}QUIT\r\n`,
    );
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await c.reply()).code);
    expect(codes).toEqual([250, 250, 250, 250, 221]);
    const msgs = delivered(maildir);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toContain("\nbody\n.\nMAIL FROM:<evil@evil.test>\nRCPT TO:<victim@evil.test>\nDATA\nmore\n");
  });

  test("hostile chunks: a bad size closes the connection; an oversized chunk is read, refused, and memory stays bounded", async () => {
    const { d, maildir } = await mx({ databytes: "1000000\n" });
    for (const bad of ["BDAT -1", "BDAT abc", "BDAT 99999999999999999999", "BDAT"]) {
      const c = await RawClient.connect(d.port);
      await c.reply();
      c.write(`EHLO raw.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\n${bad}\r\nRSET\r\n`);
      for (let i = 0; i < 3; i++) await c.reply();
      const r = await c.reply();
      expect([bad, r.code]).toEqual([bad, 521]);
      await c.closedWithin(5000);
    }
    // 48 MiB declared and sent in one chunk against a 1 MB databytes: read and dropped as it comes.
    const before = rssKiB(d.proc.pid);
    const c = await RawClient.connect(d.port);
    await c.reply();
    c.write("EHLO raw.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\n");
    for (let i = 0; i < 3; i++) await c.reply();
    const size = 48 * 1024 * 1024;
    c.write(`BDAT ${size} LAST\r\n`);
    const block = "x".repeat(1023) + "\n";
    for (let sent = 0; sent < size; sent += block.length * 1024) await c.writeAndDrain(block.repeat(1024));
    const r = await c.reply(60000);
    expect(r.code).toBe(552);
    expect(rssKiB(d.proc.pid) - before).toBeLessThan(40 * 1024);
    c.write("NOOP\r\n");
    expect((await c.reply()).code).toBe(250);
    // A client that leaves inside a chunk: nothing delivered, the daemon serves the next one.
    const cut = await RawClient.connect(d.port);
    await cut.reply();
    cut.write("EHLO raw.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nBDAT 5000 LAST\r\nSubject: cut\r\n\r\npart");
    for (let i = 0; i < 3; i++) await cut.reply();
    cut.close();
    const ok = await swaks(d.port, "--to", "user@example.org", "--from", "a@example.net", "--header", "Subject: after");
    expect(ok.out).toContain("250 2.0.0 Queued");
    const msgs = delivered(maildir);
    expect(msgs.some((m) => m.includes("Subject: cut"))).toBe(false);
    expect(msgs.some((m) => m.includes("Subject: after"))).toBe(true);
  }, 120_000);
});

describe("SMTPUTF8", () => {
  test("Python's smtplib with SMTPUTF8: a UTF-8 sender and an IDN recipient; without it, 553 5.6.7", async () => {
    const { d, maildir } = await mx();
    const py = `
import smtplib
with smtplib.SMTP("127.0.0.1", ${d.port}, timeout=20) as s:
    s.ehlo("py.example")
    assert s.has_extn("smtputf8"), s.esmtp_features
    msg = "Subject: grüße\\r\\nFrom: jörg@bücher.example\\r\\n\\r\\nhallo\\r\\n".encode("utf-8")
    s.sendmail("jörg@bücher.example", ["anna@bücher.example"], msg, mail_options=["SMTPUTF8"])
    print("SENT")
    try:
        s.sendmail("jörg@bücher.example", ["anna@bücher.example"], b"Subject: x\\r\\n\\r\\nx\\r\\n")
    except smtplib.SMTPSenderRefused as e:
        print("REFUSED", e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPNotSupportedError as e:
        print("CLIENT", e)
`;
    const r = await run(["/usr/bin/python3", "-c", py]);
    expect(r.out).toContain("SENT");
    const msgs = delivered(maildir).map((m) => Buffer.from(m, "latin1").toString("utf8"));
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toContain("Subject: grüße\n");
    expect(msgs[0]).toMatch(/by mx\.example\.org \(qpsmtpd\/[^)]+\) with UTF8SMTP;/);
    // smtplib itself refuses to send a non-ASCII address without SMTPUTF8; a raw client gets ours.
    const c = await RawClient.connect(d.port);
    await c.reply();
    c.write("EHLO raw.example\r\n");
    await c.reply();
    c.writeBytes(Buffer.from("MAIL FROM:<jörg@bücher.example>\r\n", "utf8"));
    const refused = await c.reply();
    expect([refused.code, refused.text]).toEqual([553, "5.6.7 Must declare SMTPUTF8 to send a Unicode address"]);
  });
});

describe("XCLIENT", () => {
  test("swaks --xclient-addr from a listed host: the session is the reported client's; from others 550", async () => {
    const { d, maildir } = await mx({ xclient_hosts: "127.0.0.1\n" });
    const r = await swaks(
      d.port,
      "--to",
      "user@example.org",
      "--from",
      "a@example.net",
      "--xclient-addr",
      "192.0.2.44",
      "--xclient-name",
      "client.example",
      "--header",
      "Subject: via xclient",
    );
    expect(r.out).toMatch(/<- {2}220 /g);
    expect(r.out).toContain("250 2.0.0 Queued");
    const msg = delivered(maildir).find((m) => m.includes("Subject: via xclient"))!;
    expect(msg).toContain("from client.example (HELO ");
    expect(msg).toContain("(192.0.2.44)");
    const other = await mx();
    const c = await RawClient.connect(other.d.port);
    await c.reply();
    expect((await c.command("EHLO raw.example")).text).not.toContain("XCLIENT");
    expect(await c.command("XCLIENT ADDR=192.0.2.44")).toEqual({ code: 550, text: "5.7.0 Error: insufficient authorization" });
  });
});
