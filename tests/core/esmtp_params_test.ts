import { describe, expect, test } from "bun:test";
import { OK, type Transaction, xtextDecode, xtextEncode } from "qpsmtpd";
import { isReply, mailOptions, rcptDsn } from "../../src/core/esmtp_params.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { join } from "node:path";

const TLS = join(import.meta.dir, "../fixtures/tls");
const plain = { databytes: 0, tls: false };

describe("MAIL parameters", () => {
  test("typed options from the words the client sent", () => {
    expect(mailOptions({ size: "42", body: "8bitmime", smtputf8: undefined, ret: "hdrs", envid: "QQ+2B1" }, plain)).toEqual({
      size: 42,
      body: "8BITMIME",
      smtputf8: true,
      requiretls: false,
      ret: "HDRS",
      envid: "QQ+1",
    });
    expect(mailOptions({}, plain)).toEqual({ smtputf8: false, requiretls: false });
  });

  test("bad values are 501 naming the parameter; unknown ones 555; REQUIRETLS needs TLS", () => {
    const code = (p: Record<string, string | undefined>, ctx = plain): string => {
      const r = mailOptions(p, ctx);
      return isReply(r) ? `${r.code} ${r.status} ${r.lines[0]}` : "ok";
    };
    expect(code({ ret: "ALL" })).toBe("501 5.5.4 Bad RET parameter syntax");
    expect(code({ ret: undefined })).toBe("501 5.5.4 Bad RET parameter syntax");
    expect(code({ envid: "a+zz" })).toBe("501 5.5.4 Bad ENVID parameter syntax");
    expect(code({ envid: "x".repeat(101) })).toBe("501 5.5.4 Bad ENVID parameter syntax");
    expect(code({ body: "BINARY" })).toBe("501 5.5.4 Bad BODY parameter syntax");
    expect(code({ smtputf8: "yes" })).toBe("501 5.5.4 Bad SMTPUTF8 parameter syntax");
    expect(code({ size: "12a" })).toBe("501 5.5.4 Bad SIZE parameter syntax");
    expect(code({ size: "2000" }, { databytes: 1000, tls: false })).toMatch(/^552 5\.3\.4/);
    expect(code({ auth: "<>" })).toBe("ok");
    expect(code({ auth: "a+2" })).toBe("501 5.5.4 Bad AUTH parameter syntax");
    expect(code({ requiretls: undefined })).toMatch(/^530 5\.7\.10/);
    expect(code({ requiretls: undefined }, { databytes: 0, tls: true })).toBe("ok");
    expect(code({ mt_priority: "3" })).toBe("555 5.5.4 Unsupported parameter MT_PRIORITY");
  });
});

describe("RCPT parameters (DSN)", () => {
  test("NOTIFY and ORCPT are decoded", () => {
    expect(rcptDsn({ notify: "success,Failure", orcpt: "rfc822;b+2Bx@example.org" })).toEqual({
      notify: ["SUCCESS", "FAILURE"],
      orcpt: { type: "rfc822", address: "b+x@example.org" },
    });
    expect(rcptDsn({})).toBeUndefined();
  });

  test("bad NOTIFY and ORCPT are 501", () => {
    for (
      const p of [{ notify: "NEVER,SUCCESS" }, { notify: "" }, { notify: "SOMETIMES" }, { notify: "DELAY,DELAY" }, { notify: undefined }]
    ) {
      expect(isReply(rcptDsn(p)) && (rcptDsn(p) as { code: number }).code).toBe(501);
    }
    for (const orcpt of ["rfc822", ";a@b", "rfc822;a+G1@b", "rfc822;a+0A@b", `rfc822;${"a".repeat(500)}`]) {
      expect((rcptDsn({ orcpt }) as { code: number }).code).toBe(501);
    }
    expect((rcptDsn({ xnotify: "x" }) as { code: number }).code).toBe(555);
  });

  test("xtext round trip", () => {
    const s = "a+b=c d\u00e9";
    expect(xtextDecode(xtextEncode(s))).toBe(s);
    expect(xtextDecode("+C3+A9")).toBe("\u00e9");
    expect(xtextDecode("+FF")).toBeUndefined(); // not UTF-8
    expect(xtextEncode("a+b=c")).toBe("a+2Bb+3Dc");
    expect(xtextDecode("a+2b")).toBeUndefined();
  });
});

describe("in a session", () => {
  async function session(plugins: string[] = []): Promise<{ t: TestSession; txns: Transaction[] }> {
    const t = await TestSession.start({ plugins });
    const txns: Transaction[] = [];
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", (txn) => {
      txns.push(txn);
      return OK;
    });
    return { t, txns };
  }

  test("the options and each recipient's DSN reach the plugins", async () => {
    const { t, txns } = await session();
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net> RET=FULL ENVID=id+2B1 SIZE=10")).code).toBe(250);
    expect((await t.command("RCPT TO:<b@example.org> NOTIFY=NEVER")).code).toBe(250);
    expect((await t.command("RCPT TO:<c@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c@example.org")).code).toBe(250);
    expect((await t.command("RCPT TO:<d@example.org> ORCPT=bad")).code).toBe(501);
    await t.command("DATA");
    expect((await t.data("Subject: x\n\nx\n")).code).toBe(250);
    const txn = txns[0]!;
    expect(txn.mail_options()).toEqual({ size: 10, ret: "FULL", envid: "id+1", smtputf8: false, requiretls: false });
    expect(txn.recipients().map((r) => r.dsn)).toEqual([
      { notify: ["NEVER"] },
      { notify: ["SUCCESS", "DELAY"], orcpt: { type: "rfc822", address: "c@example.org" } },
    ]);
  });

  test("enhanced status codes after EHLO, not after HELO; plugin text gets the stage's code", async () => {
    const { t } = await session();
    t.mockHook("rcpt", (_txn, r) => (r.user === "no" ? [550, "no such user"] as never : OK));
    await t.command("HELO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).lines[0]).toBe("<a@example.net>, sender OK - how exciting to get mail from you!");
    await t.command("RSET");
    const t2 = (await session()).t;
    t2.mockHook("rcpt", () => [901, "no such user here"] as never);
    await t2.command("EHLO c");
    expect((await t2.command("MAIL FROM:<a@example.net>")).status).toBe("2.1.0");
    const r = await t2.command("RCPT TO:<x@example.org>");
    expect([r.code, r.lines[0]]).toEqual([550, "5.7.1 no such user here"]);
    t2.mockHook("rcpt", () => [901, "5.1.1 no such user here"] as never);
    expect((await t2.command("RCPT TO:<y@example.org>")).lines[0]).toBe("5.1.1 no such user here");
    expect((await t2.command("QUIT")).status).toBe("2.0.0");
  });

  test("SMTPUTF8: UTF-8 addresses only with the parameter (553 5.6.7); Received says UTF8SMTP", async () => {
    const { t, txns } = await session();
    await t.command("EHLO c");
    const utf8 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");
    let r = await t.send(utf8("MAIL FROM:<jöran@bücher.example>\r\n"));
    expect([r[0]!.code, r[0]!.status]).toEqual([553, "5.6.7"]);
    r = await t.send(utf8("MAIL FROM:<jöran@bücher.example> SMTPUTF8\r\n"));
    expect(r[0]!.code).toBe(250);
    r = await t.send(utf8("RCPT TO:<用户@例子.example>\r\n"));
    expect(r[0]!.code).toBe(250);
    expect((await t.send("RCPT TO:<\xff\xfe@example.org>\r\n"))[0]!.code).toBe(501);
    await t.command("DATA");
    expect((await t.data(utf8("Subject: grüße\n\nbody\n"))).code).toBe(250);
    const txn = txns[0]!;
    expect(txn.sender()!.user).toBe("jöran");
    expect(txn.sender()!.asciiHost()).toBe("xn--bcher-kva.example");
    expect(txn.recipients()[0]!.address()).toBe("用户@例子.example");
    expect(txn.header()!.get("Received")[0]).toContain("with UTF8SMTP;");
    // The header travels as the bytes that came.
    expect(Buffer.from(txn.header()!.get("Subject")[0]!, "latin1").toString("utf8")).toBe("grüße\n");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.send(utf8("RCPT TO:<用户@例子.example>\r\n")))[0]!.code).toBe(553);
  });

  test("EHLO: LIMITS from max_rcpt and max_mail; max_mail is enforced; REQUIRETLS only under TLS", async () => {
    const t = await TestSession.start({ config: { max_rcpt: "7", max_mail: "2" }, plugins: [`tls ${TLS}/server.crt ${TLS}/server.key`] });
    t.mockHook("rcpt", () => OK);
    const e = await t.command("EHLO c");
    expect(e.lines).toContain("LIMITS RCPTMAX=7 MAILMAX=2");
    expect(e.lines).not.toContain("REQUIRETLS");
    expect((await t.command("MAIL FROM:<a@example.net> REQUIRETLS")).code).toBe(530);
    await t.command("STARTTLS");
    expect((await t.command("EHLO c")).lines).toContain("REQUIRETLS");
    expect((await t.command("MAIL FROM:<a@example.net> REQUIRETLS")).code).toBe(250);
    expect(t.transaction.mail_options().requiretls).toBe(true);
    await t.command("RSET");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    await t.command("RSET");
    const over = await t.command("MAIL FROM:<a@example.net>");
    expect([over.code, over.status]).toEqual([452, "4.5.3"]);
  });
});
