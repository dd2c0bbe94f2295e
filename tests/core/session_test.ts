import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, DENY, DENYSOFT, OK } from "qpsmtpd";
import type { Transaction } from "qpsmtpd";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";

const TLS = join(import.meta.dir, "../fixtures/tls");
const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** A session whose recipients are all accepted and whose queue captures messages. */
async function mta(opts: TestSessionOptions = {}): Promise<{ t: TestSession; queued: string[]; txns: Transaction[] }> {
  const t = await TestSession.start(opts);
  const queued: string[] = [];
  const txns: Transaction[] = [];
  t.mockHook("rcpt", () => OK);
  t.mockHook("queue", async (txn) => {
    const parts: Uint8Array[] = [];
    for await (const c of txn.message_stream()) parts.push(c);
    queued.push(Buffer.concat(parts).toString());
    txns.push(txn);
    return [OK, "Queued"];
  });
  return { t, queued, txns };
}

async function envelope(t: TestSession): Promise<void> {
  await t.command("EHLO client.example");
  await t.command("MAIL FROM:<a@example.net>");
  await t.command("RCPT TO:<b@example.org>");
}

describe("greeting and sequencing", () => {
  test("greeting, HELO and EHLO use qpsmtpd's texts", async () => {
    const t = await TestSession.start({ config: { me: "mx.example.org", databytes: "1000" } });
    expect(t.greeting?.text).toMatch(/^mx\.example\.org ESMTP qpsmtpd \S+ ready; send us your mail, but not your spam\.$/);
    const e = await t.command("EHLO client.example");
    expect(e.lines).toEqual([
      "mx.example.org Hi Unknown [127.0.0.1]",
      "PIPELINING",
      "8BITMIME",
      "SIZE 1000",
      "ENHANCEDSTATUSCODES",
      "SMTPUTF8",
      "CHUNKING",
      "BINARYMIME",
      "DSN",
      "LIMITS RCPTMAX=1000",
    ]);
    expect((await t.command("HELO again")).text).toBe("but you already said HELO ...");
  });

  test("smtpgreeting replaces the text and gains ESMTP", async () => {
    const t = await TestSession.start({ config: { smtpgreeting: "hello there" } });
    expect(t.greeting?.text).toBe("hello there ESMTP");
  });

  test("sequencing errors", async () => {
    const t = await TestSession.start();
    expect((await t.command("MAIL FROM:<a@example.net>")).text).toBe("please say hello first ...");
    expect((await t.command("HELO")).code).toBe(501);
    await t.command("HELO c");
    expect((await t.command("RCPT TO:<b@example.org>")).text).toBe("Use MAIL before RCPT");
    expect((await t.command("DATA")).text).toBe("MAIL first");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("DATA")).text).toBe("RCPT first");
    expect((await t.command("RSET")).code).toBe(250);
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(503);
    expect((await t.command("EXPN list")).text).toBe("Unrecognized command");
    expect((await t.command("AUTH PLAIN AAAA")).text).toBe("Unrecognized command");
  });

  test("pipelined commands in one write are answered in order", async () => {
    const { t } = await mta();
    const r = await t.send("EHLO c\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
    expect(r.map((x) => x.code)).toEqual([250, 250, 250, 250, 354]);
  });

  test("MAIL and RCPT syntax", async () => {
    const t = await TestSession.start({ config: { databytes: "1000" } });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:a@example.net")).text).toBe("could not parse your mail from command");
    expect((await t.command("MAIL TO:<a@example.net>")).code).toBe(501);
    expect((await t.command("MAIL FROM:<a@example.net> SIZE=999999999999")).code).toBe(552);
    for (const p of ["SIZE=", "SIZE=abc", "SIZE=-1", `SIZE=${"9".repeat(30)}`, "SIZE"]) {
      expect((await t.command(`MAIL FROM:<a@example.net> ${p}`)).code).toBe(501);
    }
    expect((await t.command("MAIL FROM:<a@example.net> FOO=bar")).code).toBe(555);
    expect((await t.command("MAIL FROM:<a@example.net> BODY=8BITMIMEX")).code).toBe(501);
    expect((await t.command("MAIL FROM:<a@example.net> SIZE=1 SIZE=2")).code).toBe(501);
    expect((await t.command("MAIL FROM: <a@example.net> SIZE=500 BODY=8BITMIME")).code).toBe(250);
    expect((await t.command("RCPT TO:<>")).text).toBe("could not parse recipient");
    expect((await t.command("RCPT TO:<b@example.org> FOO=1")).code).toBe(555);
    // qpsmtpd answers 250 here too: DSN parameters are advertised and kept.
    expect((await t.command("RCPT TO:<b@example.org> NOTIFY=NEVER")).code).toBe(250);
    expect((await t.command("RCPT TO:<postmaster>")).code).toBe(250);
    expect((await t.command("MAIL FROM:<>")).code).toBe(250);
  });
});

describe("limits and abuse", () => {
  test("a bare LF command gets 500 5.5.2 and the connection closes", async () => {
    const t = await TestSession.start();
    const r = await t.send("EHLO x\nQUIT\r\n");
    expect(r.map((x) => x.code)).toEqual([500]);
    expect(r[0]!.status).toBe("5.5.2");
    expect(t.closed).toBe(true);
  });

  test("a bare CR inside a command is one command with 501, never two", async () => {
    const t = await TestSession.start();
    await t.command("HELO c");
    const r = await t.send("MAIL FROM:<a@example.net>\rRCPT TO:<b@example.org>\r\n");
    expect(r.map((x) => x.code)).toEqual([501]);
  });

  test("a NUL in a command gets 500 5.5.2", async () => {
    const t = await TestSession.start();
    expect((await t.command("NOOP\0x")).status).toBe("5.5.2");
  });

  test("an over-long line gets 500, and the session resynchronises", async () => {
    const t = await TestSession.start({ config: { max_line_length: "512" } });
    const r = await t.send(`NOOP ${"x".repeat(4096)}\r\nNOOP\r\n`);
    expect(r.map((x) => x.code)).toEqual([500, 250]);
  });

  test("HTTP and header lines end the session at once", async () => {
    for (const line of ["GET / HTTP/1.1", "POST /x HTTP/1.0", "CONNECT a:25 HTTP/1.0", "Subject: hello"]) {
      const t = await TestSession.start();
      const r = await t.send(`${line}\r\n`);
      expect(r[0]!.code).toBe(554);
      expect(t.closed).toBe(true);
    }
  });

  test("a refused sender is named in the default text; a MAIL inside a transaction starts a new one", async () => {
    const { t } = await mta();
    let resets = 0;
    t.mockHook("reset_transaction", () => void resets++);
    t.mockHook("mail", (_txn, from) => (from.user === "no" ? DENY : from.user === "later" ? Promise.resolve(DENYSOFT) : DECLINED));
    await t.command("EHLO client.example");
    expect(await t.command("MAIL FROM:<no@example.net>")).toMatchObject({ code: 550, status: "5.7.1", text: "<no@example.net>, denied" });
    expect(await t.command("MAIL FROM:<later@example.net>")).toMatchObject({
      code: 450,
      status: "4.7.1",
      text: "<later@example.net>, temporarily denied",
    });
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
    const before = resets;
    expect((await t.command("MAIL FROM:<c@example.net>")).code).toBe(250);
    expect(resets).toBe(before + 1);
    expect(t.transaction.recipients()).toEqual([]);
    expect(String(t.transaction.sender())).toBe("<c@example.net>");
  });

  test("mail_pre and rcpt_pre may give the path to use instead; a parse plugin's parts come first", async () => {
    const { t } = await mta();
    t.mockHook("mail_pre", (_txn, path) => [OK, path.replace("a@", "sender@")]);
    t.mockHook("rcpt_pre", (_txn, path) => (path === "<b@example.org>" ? [OK, "<c@example.org>"] : DECLINED));
    t.mockHook("rcpt_parse", () => [OK, (_verb: string, line: string) => [OK, line.replace(/^to:/i, ""), "NOTIFY=NEVER"]]);
    await t.command("EHLO client.example");
    expect((await t.command("MAIL FROM:<a@example.net>")).text).toContain("<sender@example.net>, sender OK");
    expect((await t.command("RCPT TO:<b@example.org>")).text).toContain("<c@example.org>, recipient ok");
    expect((await t.command("RCPT TO:<d@example.org>")).text).toContain("<d@example.org>, recipient ok");
    expect(t.transaction.recipients().map((r) => [String(r), r.dsn?.notify])).toEqual([
      ["<c@example.org>", ["NEVER"]],
      ["<d@example.org>", ["NEVER"]],
    ]);
  });

  test("a command whose handling throws gets 451, is counted as an error, and the session goes on", async () => {
    const t = await TestSession.start({ config: { max_errors: "2" } });
    // A mail_parse plugin whose parser throws: the throw comes out of the MAIL handler itself.
    t.mockHook("mail_parse", () => [OK, () => {
      throw new Error("parser broke");
    }]);
    await t.command("EHLO client.example");
    const r = await t.command("MAIL FROM:<a@example.net>");
    expect(r.code).toBe(451);
    expect(r.text).toContain("command 'mail' failed unexpectedly");
    expect((await t.command("NOOP")).code).toBe(250);
    // The 451 counted: the next error reply is the one that ends the session.
    expect((await t.command("FOO")).code).toBe(421);
    expect(t.closed).toBe(true);
  });

  test("max_errors error replies end the session: the 421 is the next error reply at the latest", async () => {
    const t = await TestSession.start({ config: { max_errors: "3" } });
    const r = await t.send("FOO\r\nFOO\r\nFOO\r\nFOO\r\nNOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([500, 500, 500, 421]);
    expect(t.closed).toBe(true);
  });

  test("recipients over max_rcpt get 452 4.5.3; earlier ones stay", async () => {
    const { t, txns } = await mta({ config: { max_rcpt: "2" } });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<r1@example.org>")).code).toBe(250);
    expect((await t.command("RCPT TO:<r2@example.org>")).code).toBe(250);
    const over = await t.command("RCPT TO:<r3@example.org>");
    expect(over.code).toBe(452);
    expect(over.status).toBe("4.5.3");
    await t.command("DATA");
    expect((await t.data("Subject: x\n\nhi\n")).code).toBe(250);
    expect(txns[0]!.recipients().map(String)).toEqual(["<r1@example.org>", "<r2@example.org>"]);
  });

  test("a body over databytes is read to the dot, then 552; nothing queued", async () => {
    const { t, queued } = await mta({ config: { databytes: "1000" } });
    await envelope(t);
    await t.command("DATA");
    const r = await t.send(`${"x".repeat(100)}\r\n`.repeat(50) + ".\r\nNOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([552, 250]);
    expect(queued).toEqual([]);
  });

  test("MAIL gets 452 4.3.1 while the spool disk is short of space", async () => {
    const t = await TestSession.start({ config: { spool_minfree: String(2 ** 62) } });
    await t.command("EHLO c");
    const r = await t.command("MAIL FROM:<a@example.net>");
    expect([r.code, r.status, r.text]).toEqual([452, "4.3.1", "Insufficient system storage"]);
  });

  test("an idle client is closed with 421 at the command timeout; a partial line does not extend it", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, config: { timeout: "60" } });
    await t.send("NO");
    await clock.advance(30_000);
    await t.send("O");
    await clock.advance(29_000);
    expect(t.closed).toBe(false);
    await clock.advance(1_000);
    await t.done;
    expect(t.replies.at(-1)?.code).toBe(421);
    expect(t.closed).toBe(true);
  });

  test("DATA slower than data_rate_min after the grace period is closed with 421; nothing queued", async () => {
    const clock = new FakeClock();
    const { t, queued } = await mta({ clock, config: { data_rate_min: "1000", data_rate_grace: "1" } });
    await envelope(t);
    await t.command("DATA");
    await t.send("Subject: slow\r\n\r\n");
    await clock.advance(500);
    expect((await t.send("one more line\r\n")).map((x) => x.code)).toEqual([]); // within the grace: fine
    await clock.advance(600);
    expect(t.replies.at(-1)).toMatchObject({ code: 421, status: "4.4.2", text: "DATA too slow, closing connection" });
    expect(t.closed).toBe(true);
    expect(queued).toEqual([]);
  });

  test("a client silent after 354 is cut when it falls under the rate floor, not at the timeout", async () => {
    const clock = new FakeClock();
    const { t, queued } = await mta({ clock, config: { data_rate_min: "100", data_rate_grace: "30", timeout: "1200" } });
    await envelope(t);
    await t.command("DATA");
    await t.send(`Subject: x\r\n\r\n${"y".repeat(4000)}\r\n`); // enough for 40 s at 100 bytes/s
    await clock.advance(39_000);
    expect(t.closed).toBe(false);
    await clock.advance(2_000);
    expect(t.replies.at(-1)?.lines).toEqual(["4.4.2 DATA too slow, closing connection"]);
    expect(t.closed).toBe(true);
    expect(queued).toEqual([]);
  });

  test("under stress every read waits at most stress_timeout", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, config: { timeout: "1200", stress_timeout: "10" } });
    t.stress(true);
    await clock.advance(9_000);
    expect(t.closed).toBe(false);
    await clock.advance(1_000);
    expect(t.replies.at(-1)?.code).toBe(421);
    expect(t.closed).toBe(true);
  });

  test("bytes sent after DATA before 354 are a synchronisation error", async () => {
    const { t, queued } = await mta();
    await envelope(t);
    const r = await t.send("DATA\r\nSubject: x\r\n\r\nsmuggled\r\n.\r\n");
    expect(r.map((x) => x.code)).toEqual([554]);
    expect(t.closed).toBe(true);
    expect(queued).toEqual([]);
  });
});

describe("SMTP smuggling through a whole session", () => {
  const smuggled = "MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nFrom: ceo\r\n\r\nsmuggled\r\n";
  const vectors: Array<[string, string]> = [
    ["LF . LF", "\n.\n"],
    ["LF . CR LF", "\n.\r\n"],
    ["CR LF . LF", "\r\n.\n"],
    ["CR . CR", "\r.\r"],
    ["CR . CR LF", "\r.\r\n"],
    ["CR LF . CR", "\r\n.\r"],
    ["CR LF . CR CR LF", "\r\n.\r\r\n"],
  ];
  for (const [name, seq] of vectors) {
    test(`${name}: one rejection after the real end, no smuggled transaction, at every split`, async () => {
      const input = `Subject: hi\r\n\r\nbody${seq}${smuggled}.\r\nNOOP\r\n`;
      const cuts = [...Array(input.length).keys()].filter((i) => i > 0).concat([input.length]);
      for (const cut of cuts) {
        const { t, queued } = await mta();
        await envelope(t);
        await t.command("DATA");
        const replies = [...(await t.send(input.slice(0, cut))), ...(await t.send(input.slice(cut)))];
        expect(replies.map((r) => r.code)).toEqual([550, 250]);
        expect(queued).toEqual([]);
      }
    });
  }

  test("one-byte writes give the same outcome", async () => {
    const { t, queued } = await mta();
    await envelope(t);
    await t.command("DATA");
    const replies = [];
    for (const ch of `Subject: hi\r\n\r\nbody\n.\r\n${smuggled}.\r\nNOOP\r\n`) replies.push(...(await t.send(ch)));
    expect(replies.map((r) => r.code)).toEqual([550, 250]);
    expect(queued).toEqual([]);
  });

  test("dot transparency: .hidden arrives as hidden, ..x as .x", async () => {
    const { t, queued } = await mta();
    await envelope(t);
    await t.command("DATA");
    expect((await t.send("Subject: d\r\n\r\n.hidden\r\n..x\r\n.\r\n"))[0]!.code).toBe(250);
    expect(queued[0]).toEndWith("\n\nhidden\n.x\n");
  });

  test("a message that is just the final dot is accepted as empty", async () => {
    const { t, queued } = await mta();
    await envelope(t);
    await t.command("DATA");
    expect((await t.send(".\r\n"))[0]!.code).toBe(250);
    expect(queued.length).toBe(1);
  });
});

describe("the message", () => {
  test("Received and Authentication-Results are prepended; the rest is untouched", async () => {
    const { t, queued } = await mta({ config: { me: "mx.example.org" } });
    await envelope(t);
    await t.command("DATA");
    await t.data("Subject:   spaced\nAuthentication-Results: forged; spf=pass\nX-Folded: a\n\tb\n\nbody line\n");
    const m = queued[0]!;
    const lines = m.split("\n");
    expect(lines[0]).toBe("Authentication-Results: mx.example.org; auth=none");
    expect(lines[1]).toBe("Received: from Unknown (HELO client.example) (127.0.0.1)");
    expect(lines[2]).toMatch(/^ by mx\.example\.org \(qpsmtpd\/\S+\) with ESMTP; \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/);
    expect(m).toContain("Subject:   spaced\nOriginal-Authentication-Results: forged; spf=pass\nX-Folded: a\n\tb\n\nbody line\n");
  });

  test("an Authentication-Results field that claims our authserv-id is removed, even when a DKIM signature covers it", async () => {
    for (const signed of [false, true]) {
      const { t, queued } = await mta({ config: { me: "mx.example.org" } });
      await envelope(t);
      await t.command("DATA");
      const dkim = signed ? "DKIM-Signature: v=1; a=rsa-sha256; d=example.net; h=From:Authentication-Results; b=x\n" : "";
      await t.data(
        `${dkim}Authentication-Results: MX.example.org; dkim=pass\nAuthentication-Results: (comment) mx.example.org;\n spf=pass\nAuthentication-Results: other.example; spf=fail\nSubject: s\n\nbody\n`,
      );
      const m = queued[0]!;
      expect(m.match(/^Authentication-Results: mx\.example\.org; auth=none$/gm)?.length).toBe(1);
      expect(m).not.toMatch(/dkim=pass|spf=pass/);
      // A foreign one stays: renamed as qpsmtpd does, or kept as signed.
      expect(m).toContain(
        signed ? "\nAuthentication-Results: other.example; spf=fail\n" : "\nOriginal-Authentication-Results: other.example; spf=fail\n",
      );
    }
  });

  test("a message without a header block loses nothing", async () => {
    const { t, queued } = await mta();
    await envelope(t);
    await t.command("DATA");
    await t.data("just a line of text\nand another\n");
    expect(queued[0]).toEndWith("\n\njust a line of text\nand another\n");
  });

  test("data_headers_end sees the parsed header; the body is readable as lines and as a file", async () => {
    const { t } = await mta({ config: { size_threshold: "0" } });
    let subject: string | undefined;
    const lines: string[] = [];
    let file = "";
    t.mockHook("data_headers_end", (txn) => void (subject = txn.header()?.get("Subject", 0)));
    t.mockHook("data_post", async (txn) => {
      for await (const l of txn.body_lines()) lines.push(l);
      file = txn.body_filename();
      expect(await Bun.file(file).text()).toBe("Subject: files\n\nline 1\nline 2\n");
    });
    await envelope(t);
    await t.command("DATA");
    expect((await t.data("Subject: files\n\nline 1\nline 2\n")).code).toBe(250);
    expect(subject).toBe("files\n");
    expect(lines).toEqual(["line 1\n", "line 2\n"]);
    expect(existsSync(file)).toBe(false);
  });

  test("data_stream gives the original header block and the body, from memory or from the spool file, leaving it where it is", async () => {
    for (const threshold of ["100000", "0"]) {
      const spool = mkdtempSync(join(tmpdir(), "qpdatastream-"));
      const { t } = await mta({ config: { size_threshold: threshold, spool_dir: spool } });
      let read = "";
      let files: string[] = [];
      t.mockHook("data_post", async (txn) => {
        txn.header()?.add("X-Added", "by a plugin");
        for await (const c of txn.data_stream()) read += Buffer.from(c).toString("latin1");
        files = readdirSync(spool);
      });
      await envelope(t);
      await t.command("DATA");
      expect((await t.data("Subject: as sent\n\nline 1\nline 2\n")).code).toBe(250);
      expect(read).toBe("Subject: as sent\n\nline 1\nline 2\n");
      expect(files.length).toBe(threshold === "0" ? 1 : 0);
    }
  });

  test("a spool that cannot be written: the message is read to its end, then 451; no data runs as commands", async () => {
    const spool = join(mkdtempSync(join(tmpdir(), "qpspoolfail-")), "not-a-dir");
    writeFileSync(spool, "a file where the spool directory should be");
    const { t, queued } = await mta({ config: { size_threshold: "0", spool_dir: spool } });
    await envelope(t);
    await t.command("DATA");
    const r = await t.send("Subject: x\r\n\r\nRSET\r\nQUIT\r\n.\r\nNOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([451, 250]);
    expect(queued).toEqual([]);
  });

  test("a client that vanishes mid-DATA leaves nothing queued and no spool file", async () => {
    const { t, queued } = await mta({ config: { size_threshold: "0" } });
    let file = "";
    t.mockHook("data_headers_end", (txn) => void (file = txn.body_filename()));
    await envelope(t);
    await t.command("DATA");
    await t.send("Subject: partial\r\n\r\nsome body\r\n");
    expect(existsSync(file)).toBe(true);
    await t.end();
    expect(queued).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });
});

describe("STARTTLS", () => {
  const tls = [`tls ${TLS}/server.crt ${TLS}/server.key`];

  test("EHLO offers STARTTLS; injected plaintext after it is discarded", async () => {
    const t = await TestSession.start({ plugins: tls });
    t.mockHook("rcpt", () => OK);
    expect((await t.command("EHLO c")).lines).toContain("STARTTLS");
    const r = await t.send("STARTTLS\r\nRSET\r\nMAIL FROM:<attacker@evil.test>\r\n");
    expect(r.map((x) => x.code)).toEqual([220]);
    expect(t.tlsStarted).toBe(1);
    expect(t.connection.tls_cipher).toBe("TEST-CIPHER");
    const e = await t.command("EHLO c");
    expect(e.lines).not.toContain("STARTTLS");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(503);
  });

  test("a partial injected line is dropped: the first encrypted reply answers EHLO", async () => {
    const t = await TestSession.start({ plugins: tls });
    await t.command("EHLO c");
    await t.send("STARTTLS\r\nMAIL FROM:<attacker@evil.test> ");
    const r = await t.send("EHLO c\r\n");
    expect(r.map((x) => x.code)).toEqual([250]);
    expect(r[0]!.lines[0]).toContain("Hi");
  });

  test("after STARTTLS the client must greet again", async () => {
    const t = await TestSession.start({ plugins: tls });
    await t.command("EHLO c");
    await t.command("STARTTLS");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(503);
  });

  test("STARTTLS with a parameter, twice, or after AUTH is refused", async () => {
    const t = await TestSession.start({ plugins: [...tls, "auth/auth_flat_file"], config: { flat_auth_pw: "u@example.org:pw" } });
    await t.command("EHLO c");
    expect((await t.command("STARTTLS foo")).code).toBe(501);
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0pw")}`)).code).toBe(235);
    expect((await t.command("STARTTLS")).code).toBe(503);
    const t2 = await TestSession.start({ plugins: tls });
    await t2.command("EHLO c");
    await t2.command("STARTTLS");
    await t2.command("EHLO c");
    expect((await t2.command("STARTTLS")).code).toBe(554);
  });

  test("without the tls plugin STARTTLS is an unrecognized command", async () => {
    const t = await TestSession.start();
    expect((await t.command("STARTTLS")).code).toBe(500);
  });

  test("tls_before_auth hides AUTH until TLS is up", async () => {
    const t = await TestSession.start({
      plugins: [...tls, "auth/auth_flat_file"],
      config: { tls_before_auth: "1", flat_auth_pw: "u@example.org:pw" },
    });
    expect((await t.command("EHLO c")).lines.some((l) => l.startsWith("AUTH"))).toBe(false);
    await t.command("STARTTLS");
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN CRAM-MD5");
  });
});

describe("AUTH", () => {
  const opts = {
    plugins: ["auth/auth_flat_file", "auth/authdeny"],
    config: { flat_auth_pw: ["# users", "u@example.org:secret"], me: "mx.example.org" },
  };

  test("PLAIN success makes the client a relay client and is recorded in the headers", async () => {
    const { t, queued } = await mta(opts);
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN CRAM-MD5");
    const r = await t.command(`AUTH PLAIN ${b64("\0u@example.org\0secret")}`);
    expect(r.code).toBe(235);
    expect(t.connection.relay_client()).toBe(true);
    expect((await t.command("AUTH PLAIN x")).code).toBe(503);
    await t.command("MAIL FROM:<u@example.org>");
    await t.command("RCPT TO:<x@elsewhere.example>");
    await t.command("DATA");
    await t.data("Subject: a\n\nb\n");
    expect(queued[0]).toStartWith("Authentication-Results: mx.example.org; auth=pass (plain) smtp.auth=u@example.org\n");
    expect(queued[0]).toContain("with ESMTPA;");
  });

  test("an auth backend that does not answer in time is 454, not 535; credentials that are not UTF-8 are 501", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({
      clock,
      modules: { hang: { hook_auth: () => new Promise<never>(() => undefined) } },
      plugins: ["hang timeout 5"],
    });
    await t.command("EHLO c");
    const pending = t.send(`AUTH PLAIN ${b64("\0u@example.org\0pw")}\r\n`);
    await clock.advance(5_000);
    const r = (await pending).at(-1)!;
    expect([r.code, r.status]).toEqual([454, "4.7.0"]);
    const bytes = Buffer.from("\0u@example.org\0\xffx", "latin1").toString("base64");
    expect((await t.command(`AUTH PLAIN ${bytes}`)).code).toBe(501);
  });

  test("PLAIN via a 334 continuation; a wrong password is 535 with the client's IP", async () => {
    const t = await TestSession.start(opts);
    await t.command("EHLO c");
    expect((await t.command("AUTH PLAIN")).code).toBe(334);
    const r = await t.command(b64("\0u@example.org\0wrong"));
    expect(r.code).toBe(535);
    expect(r.text).toBe("PLAIN authentication failed for u@example.org from 127.0.0.1");
    expect(t.connection.relay_client()).toBe(false);
  });

  test("LOGIN asks for user and password", async () => {
    const t = await TestSession.start(opts);
    await t.command("EHLO c");
    expect((await t.command("AUTH LOGIN")).text).toBe("VXNlcm5hbWU6");
    expect((await t.command(b64("u@example.org"))).text).toBe("UGFzc3dvcmQ6");
    expect((await t.command(b64("secret"))).code).toBe(235);
  });

  test("CRAM-MD5 checks HMAC-MD5 of the challenge", async () => {
    const t = await TestSession.start(opts);
    await t.command("EHLO c");
    const ch = await t.command("AUTH CRAM-MD5");
    expect(ch.code).toBe(334);
    const ticket = Buffer.from(ch.text, "base64").toString();
    expect(ticket).toMatch(/^<[0-9a-f]+\.[0-9a-f]+@mx\.example\.org>$/);
    const digest = createHmac("md5", "secret").update(ticket).digest("hex");
    expect((await t.command(b64(`u@example.org ${digest}`))).code).toBe(235);
  });

  test("edge cases: cancel, bad base64, unknown mechanism, authzid, unknown user, mid-transaction", async () => {
    const t = await TestSession.start(opts);
    await t.command("EHLO c");
    await t.command("AUTH LOGIN");
    expect((await t.command("*")).code).toBe(501);
    expect((await t.command("AUTH PLAIN !!!notbase64")).code).toBe(501);
    expect((await t.command("AUTH GSSAPI")).code).toBe(504);
    expect((await t.command(`AUTH PLAIN ${b64("other\0u@example.org\0secret")}`)).code).toBe(535);
    expect((await t.command(`AUTH PLAIN ${b64("\0nobody@example.org\0x")}`)).code).toBe(535);
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0secret")}`)).code).toBe(503);
  });

  test("after max_auth_failures failed attempts the connection is closed", async () => {
    const t = await TestSession.start({ ...opts, config: { ...opts.config, max_auth_failures: "2" } });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0guess1")}`)).code).toBe(535);
    const r = await t.send(`AUTH PLAIN ${b64("\0u@example.org\0guess2")}\r\n`);
    expect(r.map((x) => x.code)).toEqual([535, 421]);
    expect(t.closed).toBe(true);
  });

  test("an AUTH response longer than the SASL limit is refused", async () => {
    const t = await TestSession.start(opts);
    await t.command("EHLO c");
    await t.command("AUTH PLAIN");
    expect((await t.command("A".repeat(20000))).code).toBe(500);
  });

  test("no auth plugins: AUTH is not advertised and not recognised", async () => {
    const t = await TestSession.start();
    expect((await t.command("EHLO c")).lines.some((l) => l.startsWith("AUTH"))).toBe(false);
    expect((await t.command("AUTH PLAIN")).code).toBe(500);
  });

  test("a DENY from an auth plugin stops the chain", async () => {
    const t = await TestSession.start(opts);
    t.mockHook("auth-plain", () => [DENY, "locked"]);
    await t.command("EHLO c");
    const r = await t.command(`AUTH PLAIN ${b64("\0u@example.org\0secret")}`);
    expect(r.code).toBe(535);
    expect(r.text).toEndWith(" - locked");
  });
});

describe("more edges", () => {
  test("a TLS ClientHello on the plaintext port is refused and the connection closed", async () => {
    const t = await TestSession.start();
    const r = await t.send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]));
    expect(r.map((x) => x.code)).toEqual([500]);
    expect(t.closed).toBe(true);
  });

  test("a header block over max_header_size gets 552 after the dot; nothing queued", async () => {
    const { t, queued } = await mta({ config: { max_header_size: "1000" } });
    await envelope(t);
    await t.command("DATA");
    const r = await t.send(`${"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(100)}\r\nbody\r\n.\r\n`);
    expect(r.map((x) => x.code)).toEqual([552]);
    expect(queued).toEqual([]);
  });

  test("config hooks answer before the files; user_config before config", async () => {
    const t = await TestSession.start({ config: { me: "from.file.example" } });
    t.mockHook("config", (_txn, name) => (name === "me" ? [OK, "from.hook.example"] : undefined));
    expect((await t.command("HELO c")).text).toStartWith("from.hook.example Hi");
    t.mockHook("user_config", (_txn, addr, name) => (name === "quota" ? [OK, `${addr.user}-quota`] : undefined));
    const { Address } = await import("qpsmtpd");
    expect(t.qp.config("quota", Address.parse("<ann@example.org>"))).toBe("ann-quota");
    expect(t.qp.config("quota")).toBeUndefined();
  });

  test("temp files of a plugin go with the transaction", async () => {
    const { t } = await mta();
    let path = "";
    t.mockHook("data_post", (txn) => {
      path = t.qp.temp_file();
      writeFileSync(path, "scratch");
      expect(txn.notes("x")).toBeUndefined();
    });
    await envelope(t);
    await t.command("DATA");
    await t.data("Subject: t\n\nb\n");
    expect(path).not.toBe("");
    expect(existsSync(path)).toBe(false);
  });
});

describe("config hooks", () => {
  test("a config hook that reads the transaction and other config is called a bounded number of times", async () => {
    const asked: string[] = [];
    const { t } = await mta({
      modules: {
        cfg: {
          hook_config(txn, name) {
            asked.push(name);
            // Reading the transaction and config from inside the hook must not recurse.
            void this.transaction.sender();
            void txn.notes("x");
            void this.qp.config(name);
            void this.qp.config("me");
            return DECLINED;
          },
        },
      },
      plugins: ["cfg"],
    });
    await t.command("EHLO client.example");
    for (let i = 0; i < 3; i++) {
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<b@example.org>");
      await t.command("DATA");
      expect((await t.data("Subject: x\n\nbody\n")).code).toBe(250);
    }
    // Before the fix this was about 50,000 calls for 3 messages, and the stack overflowed.
    expect(asked.length).toBeLessThan(40);
    expect(new Set(asked)).toEqual(new Set(["smtpgreeting", "me", "xclient_hosts", "spool_dir", "me-auth-results"]));
  });
});

describe("body_replace", () => {
  test("replaces the body and keeps the header, in memory and on disk", async () => {
    for (const threshold of ["0", "1000000"]) {
      const { t, queued } = await mta({ config: { size_threshold: threshold } });
      t.mockHook("data_post", async (txn) => {
        await txn.body_replace("a new body\nof two lines\n");
        expect(txn.body_length()).toBe(24);
        expect(await txn.body_as_string()).toBe("a new body\nof two lines\n");
      });
      await envelope(t);
      await t.command("DATA");
      expect((await t.data("Subject: rewritten\nX-Keep: 1\n\nthe old body\nwith more lines\n")).code).toBe(250);
      expect(queued[0]).toContain("Subject: rewritten\nX-Keep: 1\n\na new body\nof two lines\n");
      expect(queued[0]).not.toContain("old body");
    }
  });
});

describe("NUL in the message", () => {
  test("is refused with 554 5.6.0 after the real end; nothing is kept; the session goes on", async () => {
    for (const body of ["a\r\n\0.\r\nsmuggled\r\n", "a\r\n.\0\r\nMAIL FROM:<x@evil.test>\r\n"]) {
      const { t, queued } = await mta();
      await envelope(t);
      await t.command("DATA");
      const r = await t.send(`${body}.\r\n`);
      expect(r.map((x) => [x.code, x.status, x.text])).toEqual([[554, "5.6.0", "Error: NUL character in message"]]);
      expect(queued).toEqual([]);
      expect((await t.command("NOOP")).code).toBe(250);
    }
  });
});
