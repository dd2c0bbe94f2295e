import { describe, expect, test } from "bun:test";
import { DENY, OK, type Transaction } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";

/** A session that accepts every recipient and keeps what the queue got. */
async function mta(opts: TestSessionOptions = {}): Promise<{ t: TestSession; queued: string[]; txns: Transaction[] }> {
  const t = await TestSession.start(opts);
  const queued: string[] = [];
  const txns: Transaction[] = [];
  t.mockHook("rcpt", () => OK);
  t.mockHook("queue", async (txn) => {
    const parts: Uint8Array[] = [];
    for await (const c of txn.message_stream()) parts.push(c);
    queued.push(Buffer.concat(parts).toString("latin1"));
    txns.push(txn);
    return [OK, "Queued"];
  });
  await t.command("EHLO client.example");
  return { t, queued, txns };
}

const bdat = (data: string, last = false): string => `BDAT ${Buffer.byteLength(data, "latin1")}${last ? " LAST" : ""}\r\n${data}`;
const body = (q: string): string => q.slice(q.indexOf("\n\n") + 2);

describe("BDAT", () => {
  test("chunks make the message the queue gets, as DATA would; LF line ends in the spool", async () => {
    const { t, queued, txns } = await mta();
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    const r1 = await t.send(bdat("Subject: chunks\r\n\r\nline one\r\nline"));
    expect(r1.map((r) => [r.code, r.status])).toEqual([[250, "2.0.0"]]);
    const r2 = await t.send(bdat(" two\r\n.leading dot stays\r\n", true));
    expect(r2.map((r) => r.code)).toEqual([250]);
    expect(r2[0]!.text).toBe("Queued");
    expect(queued).toHaveLength(1);
    expect(body(queued[0]!)).toBe("line one\nline two\n.leading dot stays\n");
    expect(txns[0]!.header()?.get("Subject")).toEqual(["chunks\n"]);
    expect(queued[0]).toMatch(/^Authentication-Results: .*\nReceived: from /s);
  });

  test("pipelined: MAIL, RCPT and every chunk in one write, answered in order", async () => {
    const { t, queued } = await mta();
    const r = await t.send(
      "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n" + bdat("Subject: p\r\n\r\n") + bdat("a\r") + bdat("\nb\r\n", true) +
        "NOOP\r\n",
    );
    expect(r.map((x) => x.code)).toEqual([250, 250, 250, 250, 250, 250]);
    // A CR ending one chunk and the LF starting the next are one line end.
    expect(body(queued[0]!)).toBe("a\nb\n");
  });

  test("BDAT 0 LAST ends a message; a message of one empty chunk is a message with no header", async () => {
    const { t, queued } = await mta();
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n" + bdat("Subject: z\r\n\r\nx\r\n"));
    expect((await t.command("BDAT 0 LAST")).code).toBe(250);
    expect(body(queued[0]!)).toBe("x\n");
  });

  test("a refused BDAT still reads its octets: nothing in them is read as a command", async () => {
    const { t } = await mta();
    const evil = "MAIL FROM:<x@evil.test>\r\nRCPT TO:<victim@example.org>\r\n";
    const r = await t.send(bdat(evil) + "NOOP\r\n");
    expect(r.map((x) => [x.code, x.text])).toEqual([[503, "MAIL first"], [250, "OK"]]);
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.send(bdat(evil))).map((x) => [x.code, x.text])).toEqual([[503, "RCPT first"]]);
  });

  test("DATA after BDAT in one transaction is 503; RSET discards the chunks", async () => {
    const { t, queued } = await mta();
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n" + bdat("Subject: a\r\n\r\nfirst\r\n"));
    expect((await t.command("DATA")).code).toBe(503);
    expect((await t.command("RSET")).code).toBe(250);
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    expect((await t.send(bdat("Subject: b\r\n\r\nsecond\r\n", true)))[0]!.code).toBe(250);
    expect(queued).toHaveLength(1);
    expect(body(queued[0]!)).toBe("second\n");
  });

  test("a bare LF, a bare CR or a NUL in a chunk refuses the message at LAST, and the session goes on", async () => {
    for (const bad of ["a\nb\r\n", "a\rb\r\n", "a\0b\r\n", "ends in CR\r"]) {
      const { t, queued } = await mta();
      await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
      expect((await t.send(bdat("Subject: x\r\n\r\n" + bad)))[0]!.code).toBe(250);
      const r = await t.send(bdat("more\r\n", true));
      expect(r[0]!.code).toBe(bad.includes("\0") ? 554 : 550);
      expect(queued).toHaveLength(0);
      expect((await t.command("NOOP")).code).toBe(250);
    }
  });

  test("databytes applies to the sum of the chunks: 552, the rest is read, nothing kept", async () => {
    const { t, queued } = await mta({ config: { databytes: "100" } });
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    expect((await t.send(bdat("x".repeat(60))))[0]!.code).toBe(250);
    const r = await t.send(bdat(`${"RSET\r\n".repeat(10)}`) + "NOOP\r\n");
    expect(r.map((x) => x.code)).toEqual([552, 250]);
    expect((await t.send(bdat("y", true)))[0]!.code).toBe(503);
    expect(queued).toHaveLength(0);
  });

  test("a BDAT without a usable size is 521 and the connection closes (its data cannot be framed)", async () => {
    for (const arg of ["", "-1", "abc", "10 NOTLAST", `${"9".repeat(16)}`, "1 LAST extra"]) {
      const { t } = await mta();
      const r = await t.send(`BDAT ${arg}\r\nRCPT TO:<x@y>\r\n`);
      expect(r.map((x) => x.code)).toEqual([521]);
      expect(t.closed).toBe(true);
    }
  });

  test("a connection that ends inside a chunk keeps nothing and queues nothing", async () => {
    const { t, queued } = await mta();
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    await t.send("BDAT 1000 LAST\r\nSubject: cut\r\n\r\nonly part");
    await t.end();
    expect(queued).toHaveLength(0);
  });

  test("BODY=BINARYMIME: only BDAT; the body after the blank line is kept byte for byte", async () => {
    const { t, queued, txns } = await mta();
    await t.command("MAIL FROM:<a@example.net> BODY=BINARYMIME");
    await t.command("RCPT TO:<b@example.org>");
    expect((await t.command("DATA")).code).toBe(503);
    const binary = "\0\x01\r\n\n\rbytes\xff";
    expect((await t.send(bdat(`Subject: bin\r\nX-A: b\r\n\r\n${binary}`, true)))[0]!.code).toBe(250);
    expect(txns[0]!.mail_options().body).toBe("BINARYMIME");
    expect(body(queued[0]!)).toBe(binary);
    expect(txns[0]!.header()?.get("X-A")).toEqual(["b\n"]);
  });

  test("the data hook runs once, on the first chunk; its refusal answers that chunk", async () => {
    const { t } = await mta();
    let calls = 0;
    t.mockHook("data", () => (++calls === 1 ? [DENY, "no chunks today"] : OK));
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    const r = await t.send(bdat("Subject: x\r\n\r\n") + bdat("y\r\n", true));
    expect(r.map((x) => [x.code, x.text])).toEqual([[554, "no chunks today"], [503, "MAIL first"]]);
    await t.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    expect((await t.send(bdat("Subject: x\r\n\r\n") + bdat("y\r\n", true))).map((x) => x.code)).toEqual([250, 250]);
    expect(calls).toBe(2);
  });
});
