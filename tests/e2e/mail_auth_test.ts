/**
 * Mail authentication end to end over SMTP against dist/qpsmtpd: SPF, DKIM (dkimpy signs) and
 * DMARC policies on inbound mail, DKIM signing and ARC sealing (verified by dkimpy) for a relay
 * client, with every record on a loopback DNS server. The client is 127.0.0.1, so the SPF
 * records name that address.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDnsServer, type Zone } from "../helpers/dns_server.ts";
import { arcpyVerify, crlf, dkimpySign, dkimpyVerify, makeKey } from "../helpers/dkimpy.ts";
import { configDir, type Daemon, RawClient, startDaemon } from "./helpers.ts";

const signer = makeKey("e2e");
const ours = makeKey("out");

const ZONE: Zone = {
  // SPF: the loopback client may send for these envelope domains.
  "mail.reject.example": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
  "spf-ok.example": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
  // DMARC records.
  "_dmarc.reject.example": { TXT: ["v=DMARC1; p=reject"] },
  "_dmarc.quar.example": { TXT: ["v=DMARC1; p=quarantine"] },
  "_dmarc.none.example": { TXT: ["v=DMARC1; p=none"] },
  "_dmarc.strict.example": { TXT: ["v=DMARC1; p=reject; adkim=s; aspf=s"] },
  "_dmarc.relaxed.example": { TXT: ["v=DMARC1; p=reject"] },
  "_dmarc.sub.example": { TXT: ["v=DMARC1; p=none; sp=reject"] },
  // DKIM keys of the signing domains dkimpy uses.
  "e2e._domainkey.mail.strict.example": { TXT: [signer.txt] },
  "e2e._domainkey.strict.example": { TXT: [signer.txt] },
  "e2e._domainkey.mail.relaxed.example": { TXT: [signer.txt] },
  // Our own outbound key.
  "out._domainkey.example.com": { TXT: [ours.txt] },
};

let dns: TestDnsServer;
let inbound: { d: Daemon; maildir: string };
let outbound: { d: Daemon; maildir: string };

function start(plugins: string[], extra: Record<string, string> = {}) {
  const maildir = join(mkdtempSync(join(tmpdir(), "qpauth-")), "Maildir");
  const dir = configDir({
    me: "mx.e2e.example\n",
    rcpthosts: "example.org\n",
    dns_servers: `127.0.0.1:${dns.port}\n`,
    dns_timeout: "1\n",
    plugins: [...plugins, `queue/maildir ${maildir}`].join("\n") + "\n",
    logging: "logging/warn LOGINFO\n",
    ...extra,
  });
  return { dir, maildir };
}

beforeAll(async () => {
  dns = await TestDnsServer.start(ZONE);
  const a = start(["sender_permitted_from", "dkim reject 0", "dmarc", "rcpt_ok"]);
  inbound = { d: await startDaemon(a.dir), maildir: a.maildir };
  const b = start(["relay", "rcpt_ok", "dkim", "arc"], { relayclients: "127.0.0.1\n" });
  mkdirSync(join(b.dir, "dkim", "example.com"), { recursive: true });
  writeFileSync(join(b.dir, "dkim", "example.com", "private"), ours.pem, { mode: 0o600 });
  writeFileSync(join(b.dir, "dkim", "example.com", "selector"), "out\n");
  outbound = { d: await startDaemon(b.dir), maildir: b.maildir };
});
afterAll(async () => {
  await inbound?.d.stop();
  await outbound?.d.stop();
  await dns.stop();
});

/** One SMTP conversation; the reply to the end of DATA and the message as delivered. */
async function send(port: number, maildir: string, mailFrom: string, message: string, to = "user@example.org") {
  const dir = join(maildir, "new");
  const before = new Set(existsSync(dir) ? readdirSync(dir) : []);
  const c = await RawClient.connect(port);
  try {
    expect((await c.reply()).code).toBe(220);
    expect((await c.command("EHLO client.e2e.example")).code).toBe(250);
    expect((await c.command(`MAIL FROM:<${mailFrom}>`)).code).toBe(250);
    expect((await c.command(`RCPT TO:<${to}>`)).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.write(`${crlf(message).replace(/\r\n$/, "")}\r\n.\r\n`);
    const r = await c.reply(20_000);
    await c.command("QUIT");
    const fresh = existsSync(dir) ? readdirSync(dir).filter((f) => !before.has(f)) : [];
    const delivered = fresh.map((f) => readFileSync(join(dir, f), "latin1"));
    return { ...r, delivered: delivered[0] ?? "" };
  } finally {
    c.close();
  }
}

const msg = (from: string, extra = "") =>
  `From: ${from}\nTo: user@example.org\nSubject: dmarc e2e${extra}\nMessage-ID: <${Math.random()}@e2e>\n\nHello.\n`;
const inbox = (mailFrom: string, message: string) => send(inbound.d.port, inbound.maildir, mailFrom, message);
const authResults = (m: string) => /^Authentication-Results: (.*)$/m.exec(m)?.[1] ?? "";

describe("DMARC over SMTP against dist/qpsmtpd", () => {
  test("p=reject, nothing aligned: 550 5.7.1, nothing delivered", async () => {
    const r = await inbox("bounce@elsewhere.example", msg("Alice <alice@reject.example>"));
    expect([r.code, r.text]).toEqual([550, "5.7.1 failed DMARC policy of reject.example"]);
    expect(r.delivered).toBe("");
  });
  test("p=reject, SPF aligned (relaxed): delivered, one Authentication-Results with spf, dkim, dmarc", async () => {
    const r = await inbox("bounce@mail.reject.example", msg("alice@reject.example"));
    expect(r.code).toBe(250);
    expect(authResults(r.delivered)).toBe(
      "mx.e2e.example; auth=none; spf=pass smtp.mailfrom=mail.reject.example; dkim=none (message not signed); dmarc=pass (p=reject dis=none) header.from=reject.example",
    );
    expect(r.delivered.match(/^Authentication-Results:/gm)).toHaveLength(1);
    expect(r.delivered).toMatch(/^Received-SPF: pass /m);
  });
  test("p=quarantine: delivered with the disposition header, never deferred", async () => {
    const r = await inbox("bounce@elsewhere.example", msg("alice@quar.example"));
    expect(r.code).toBe(250);
    expect(r.delivered).toContain("X-DMARC-Disposition: quarantine (header.from=quar.example p=quarantine)\n");
  });
  test("p=none: delivered, recorded", async () => {
    const r = await inbox("bounce@elsewhere.example", msg("alice@none.example"));
    expect(r.code).toBe(250);
    expect(authResults(r.delivered)).toContain("dmarc=fail (p=none dis=none) header.from=none.example");
    expect(r.delivered).not.toContain("X-DMARC-Disposition");
  });
  test("strict alignment: a DKIM pass for a subdomain does not align; for the domain itself it does", async () => {
    const sub = await dkimpySign(msg("alice@strict.example"), { domain: "mail.strict.example", key: signer });
    const r = await inbox("bounce@elsewhere.example", sub);
    expect(r.code).toBe(550);
    const exact = await dkimpySign(msg("alice@strict.example"), { domain: "strict.example", key: signer });
    const ok = await inbox("bounce@elsewhere.example", exact);
    expect(ok.code).toBe(250);
    expect(authResults(ok.delivered)).toMatch(/dkim=pass header\.d=strict\.example .*dmarc=pass/);
  });
  test("relaxed alignment: a DKIM pass for a subdomain aligns", async () => {
    const signed = await dkimpySign(msg("alice@relaxed.example"), { domain: "mail.relaxed.example", key: signer });
    const r = await inbox("bounce@elsewhere.example", signed);
    expect(r.code).toBe(250);
    expect(authResults(r.delivered)).toContain("dmarc=pass (p=reject dis=none) header.from=relaxed.example");
  });
  test("the subdomain policy: sp=reject below sub.example, p=none at it", async () => {
    expect((await inbox("bounce@elsewhere.example", msg("alice@news.sub.example"))).code).toBe(550);
    expect((await inbox("bounce@elsewhere.example", msg("alice@sub.example"))).code).toBe(250);
  });
  test("a From domain without a record: delivered, dmarc=none", async () => {
    const r = await inbox("bounce@elsewhere.example", msg("alice@norecord.example"));
    expect(r.code).toBe(250);
    expect(authResults(r.delivered)).toContain("dmarc=none header.from=norecord.example");
  });
  test("no From, or two From fields: DMARC cannot pass, refused", async () => {
    const none = await inbox("bounce@mail.reject.example", "To: user@example.org\nSubject: no from\n\nx\n");
    expect([none.code, none.text]).toEqual([550, "5.7.1 DMARC cannot be evaluated: no From field"]);
    const two = await inbox("bounce@mail.reject.example", `From: alice@reject.example\n${msg("mallory@evil.example")}`);
    expect([two.code, two.text]).toEqual([550, "5.7.1 DMARC cannot be evaluated: 2 From fields"]);
  });
  test("an Authentication-Results forged with our authserv-id is removed", async () => {
    const r = await inbox(
      "bounce@mail.reject.example",
      `Authentication-Results: mx.e2e.example; dmarc=pass header.from=reject.example\n${msg("alice@reject.example")}`,
    );
    expect(r.code).toBe(250);
    expect(r.delivered.match(/^Authentication-Results: mx\.e2e\.example;/gm)).toHaveLength(1);
    expect(authResults(r.delivered)).toContain("spf=pass");
  });
});

describe("DKIM signing and ARC sealing for a relay client, against dist/qpsmtpd", () => {
  test("the delivered message carries our DKIM-Signature and ARC set; dkimpy verifies both", async () => {
    const r = await send(
      outbound.d.port,
      outbound.maildir,
      "alice@example.com",
      msg("Alice <alice@example.com>"),
      "someone@elsewhere.example",
    );
    expect(r.code).toBe(250);
    expect(r.delivered).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/m);
    expect(r.delivered).toMatch(/^ARC-Seal: i=1; /m);
    // queue/maildir adds Return-Path and Delivered-To at the top: neither is signed or sealed.
    expect((await dkimpyVerify(r.delivered, dns.port)).ok).toBe(true);
    expect(await arcpyVerify(r.delivered, dns.port)).toMatch(/^pass/);
  });
});
