/**
 * dkim: verification of messages Debian's dkimpy signed (rsa-sha256, ed25519-sha256, l=), and
 * dkimpy verifying what the plugin signed for relay clients; bad signatures and bad DNS; keys
 * from a loopback DNS server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { findKey } from "../../plugins/dkim.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { dkimpySign, dkimpyVerify, makeKey, type TestKey } from "../helpers/dkimpy.ts";
import { queuedMessage, withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const rsa = makeKey("rsa");
const ed = makeKey("ed", "ed25519");
const short = makeKey("short", "rsa", 512);
const ours = makeKey("mail");
const ourEd = makeKey("edmail", "ed25519");

const MESSAGE = [
  "From: Alice <alice@signer.example>",
  "To: bob@example.org",
  "Subject: the plan",
  "Date: Sun, 29 Nov 2026 10:00:00 +0000",
  "Message-ID: <plan-1@signer.example>",
  "",
  "Meet at noon.",
  "Bring the map.",
  "",
].join("\n");

let dns: TestDnsServer;
let configDir: string;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "rsa._domainkey.signer.example": { TXT: [rsa.txt] },
    "ed._domainkey.signer.example": { TXT: [ed.txt] },
    "short._domainkey.signer.example": { TXT: [short.txt] },
    "slow._domainkey.signer.example": { drop: true },
    "huge._domainkey.signer.example": { TXT: [["v=DKIM1; k=rsa; p=", ..."A".repeat(10_000).match(/.{1,250}/g)!]], truncate: true },
    "mail._domainkey.example.com": { TXT: [ours.txt] },
    "edmail._domainkey.ed.example": { TXT: [ourEd.txt] },
  });
  // config/dkim as qpsmtpd lays it out: a key per domain, an alias symlink, an incomplete one.
  configDir = mkdtempSync(join(tmpdir(), "qpdkim-"));
  const put = (domain: string, key: TestKey) => {
    mkdirSync(join(configDir, "dkim", domain), { recursive: true });
    writeFileSync(join(configDir, "dkim", domain, "private"), key.pem, { mode: 0o600 });
    writeFileSync(join(configDir, "dkim", domain, "selector"), `${key.selector}\n`);
  };
  put("example.com", ours);
  put("ed.example", ourEd);
  symlinkSync("example.com", join(configDir, "dkim", "alias.example"));
  mkdirSync(join(configDir, "dkim", "noselector.example"), { recursive: true });
  writeFileSync(join(configDir, "dkim", "noselector.example", "private"), ours.pem);
});
afterAll(() => dns.stop());

function opts(plugin = "dkim", extra: TestSessionOptions = {}): TestSessionOptions {
  return withDnsServer(dns, {
    plugins: [plugin, "rcpt_ok"],
    remoteIp: "192.0.2.10",
    configDirs: [configDir],
    ...extra,
    config: { me: "mx.test.example", rcpthosts: "example.org", ...extra.config },
  }, "0.3");
}

/**
 * One message through a session with `plugin`; the DATA reply, the queued message, its
 * Authentication-Results and the session (see queuedMessage). `config` goes on top of the test config.
 */
async function deliver(
  message: string,
  { plugin = "dkim", config = {}, from = "alice@signer.example", ...rest }: {
    plugin?: string;
    relay?: boolean;
    from?: string;
    config?: Record<string, string>;
    atQueue?: () => void;
  } = {},
) {
  const d = await queuedMessage(opts(plugin, { config }), message, { from, ...rest });
  return { ...d, ar: /^Authentication-Results: (.*)$/m.exec(d.queued)?.[1] ?? "" };
}

describe("dkim verifies what dkimpy signed", () => {
  test("rsa-sha256: pass, in Authentication-Results, notes for dmarc", async () => {
    const { r, t, ar } = await deliver(await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa }));
    expect(r.code).toBe(250);
    expect(ar).toMatch(
      /^mx\.test\.example; auth=none; dkim=pass header\.d=signer\.example header\.i=@signer\.example header\.s=rsa header\.a=rsa-sha256 header\.b=/,
    );
    expect(t.logs.some((l) => l.plugin === "dkim" && l.message === "pass: signer.example/rsa=pass")).toBe(true);
    expect(t.connection.notes("karma")).toBe(1);
  });
  test("ed25519-sha256: pass", async () => {
    const { r, ar } = await deliver(await dkimpySign(MESSAGE, { domain: "signer.example", key: ed }));
    expect(r.code).toBe(250);
    expect(ar).toContain("dkim=pass header.d=signer.example header.i=@signer.example header.s=ed header.a=ed25519-sha256");
  });
  test("two signatures: each gets its result", async () => {
    const twice = await dkimpySign(await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa }), {
      domain: "signer.example",
      key: ed,
    });
    const { r, ar } = await deliver(twice);
    expect(r.code).toBe(250);
    expect(ar.match(/dkim=pass/g)).toHaveLength(2);
  });
  test("l=: text added after the signed length still passes; a change inside it fails", async () => {
    const signed = await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa, length: true });
    expect(signed).toMatch(/; l=\d+/);
    expect((await deliver(`${signed}P.S. added by a list\r\n`)).r.code).toBe(250);
    expect((await deliver(signed.replace("noon", "nine"))).r.code).toBe(552);
  });
  test("a changed body byte or signed header fails: 552 with reject on (the default), annotated with reject 0", async () => {
    const signed = await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa });
    const body = await deliver(signed.replace("Meet at noon.", "Meet at noun."));
    expect([body.r.code, body.r.text]).toEqual([552, "DKIM signature invalid: signer.example"]);
    const subject = await deliver(signed.replace("Subject: the plan", "Subject: the plan!"));
    expect(subject.r.code).toBe(552);
    const tolerated = await deliver(signed.replace("Meet at noon.", "Meet at noun."), { plugin: "dkim reject 0" });
    expect(tolerated.r.code).toBe(250);
    expect(tolerated.ar).toContain("dkim=fail");
    expect(tolerated.t.connection.notes("karma")).toBe(-1);
    expect((await deliver(signed.replace("noon", "noun"), { plugin: "dkim reject 1 reject_type temp" })).r.code).toBe(452);
  });
  test("a key under 1024 bits: fail (RFC 8301)", async () => {
    const { r, t, ar } = await deliver(await dkimpySign(MESSAGE, { domain: "signer.example", key: short }), { plugin: "dkim reject 0" });
    expect(r.code).toBe(250);
    expect(ar).toContain("dkim=fail (key too short) header.d=signer.example header.i=@signer.example header.s=short");
    expect(t.logs.some((l) => l.message === "fail: signer.example/short=fail")).toBe(true);
  });
  test("a message above size_threshold is streamed from the spool file, and verifies", async () => {
    const big = MESSAGE.replace("Bring the map.", Array.from({ length: 5000 }, (_, i) => `line ${i} of a long body`).join("\n"));
    const signed = await dkimpySign(big, { domain: "signer.example", key: rsa });
    const t = await TestSession.start(opts("dkim", { config: { size_threshold: "1000" } }));
    t.mockHook("queue", () => OK);
    await t.command("EHLO client.example");
    await t.command("MAIL FROM:<alice@signer.example>");
    await t.command("RCPT TO:<bob@example.org>");
    await t.command("DATA");
    expect((await t.data(signed)).code).toBe(250);
    expect(t.logs.some((l) => l.message === "pass: signer.example/rsa=pass")).toBe(true);
  });
  test("a message under size_threshold is verified from memory: no spool file is written for it", async () => {
    const spool = mkdtempSync(join(tmpdir(), "qpdkimspool-"));
    let files: string[] = ["not looked at"];
    const { r, t } = await deliver(await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa }), {
      config: { size_threshold: "100000", spool_dir: spool },
      atQueue: () => (files = readdirSync(spool)),
    });
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => l.message === "pass: signer.example/rsa=pass")).toBe(true);
    expect(files).toEqual([]);
  });
  test("no signature: none", async () => {
    const { r, t, ar } = await deliver(MESSAGE);
    expect(r.code).toBe(250);
    expect(ar).toBe("mx.test.example; auth=none; dkim=none (message not signed)");
    expect(t.logs.some((l) => l.message === "none: no signature")).toBe(true);
  });
  test("no signature: the answer given without the verifier is the verifier's own for that message", async () => {
    const { dkimVerify } = await import("mailauth");
    for (const message of [MESSAGE, `${MESSAGE}DKIM-Signature: only in the body\n`, "\nDKIM-Signature: after an empty header\n"]) {
      const own = await dkimVerify(Buffer.from(message.replace(/\n/g, "\r\n")), { strict: true } as never);
      const { r, ar } = await deliver(message);
      expect(r.code).toBe(250);
      expect(ar).toBe(`mx.test.example; auth=none; ${own.results.map((x) => x.info).join("; ")}`);
    }
  });
  test("a DKIM-Signature field whose name is folded, spaced or in other case is still verified", async () => {
    const signed = await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa });
    expect(signed.startsWith("DKIM-Signature:")).toBe(true);
    for (const name of ["DKIM-Signature\r\n :", "dkim-SIGNATURE :", "DKIM-Signature\t:"]) {
      const { r, ar } = await deliver(signed.replace("DKIM-Signature:", name));
      expect([r.code, ar]).toEqual([250, expect.stringContaining("dkim=pass header.d=signer.example")]);
    }
    // Any other field before it, and the body after: the name is looked for in the whole header.
    const { ar } = await deliver(`Received: from somewhere\r\n${signed}`);
    expect(ar).toContain("dkim=pass header.d=signer.example");
  });
});

describe("dkim: bad input gets a result, a log line, no crash", () => {
  test("a malformed DKIM-Signature: neutral, accepted", async () => {
    const { r, t, ar } = await deliver(`DKIM-Signature: v=1; a=rsa-sha256; d=signer.example; s=rsa; b=!!!; h=\n${MESSAGE}`);
    expect(r.code).toBe(250);
    expect(ar).toMatch(/dkim=(neutral|permerror)/);
    expect(t.logs.some((l) => l.plugin === "dkim" && /^(neutral|permerror): signer\.example\/rsa=/.test(l.message))).toBe(true);
  });
  test("a DNS server that never answers: temperror, 452 with reject on, accepted with reject 0", async () => {
    const slow = makeKey("slow");
    const signed = await dkimpySign(MESSAGE, { domain: "signer.example", key: slow });
    const deferred = await deliver(signed);
    expect([deferred.r.code, deferred.r.text]).toEqual([452, "Please try again later - DKIM key lookup failed"]);
    const accepted = await deliver(signed, { plugin: "dkim reject 0" });
    expect(accepted.r.code).toBe(250);
    expect(accepted.ar).toContain("dkim=temperror");
    expect(accepted.t.logs.some((l) => l.message.startsWith("temperror: signer.example/slow=temperror"))).toBe(true);
  });
  test("a 10 KB key record (over TCP) that is not a key: neutral, accepted", async () => {
    const huge = makeKey("huge");
    const { r, ar } = await deliver(await dkimpySign(MESSAGE, { domain: "signer.example", key: huge }));
    expect(r.code).toBe(250);
    expect(ar).toMatch(/dkim=(neutral|permerror|fail)/);
  });
  test("reject naughty defers the refusal to the naughty plugin", async () => {
    const signed = (await dkimpySign(MESSAGE, { domain: "signer.example", key: rsa })).replace("noon", "noun");
    const { r, t } = await deliver(signed, { plugin: "dkim reject naughty" });
    expect(r.code).toBe(250);
    expect(String(t.connection.notes("naughty"))).toContain("DKIM signature invalid");
  });
});

describe("dkim signs for relay clients; dkimpy verifies", () => {
  test("rsa: the From domain's key, relaxed/relaxed, a sensible header list", async () => {
    const msg = MESSAGE.replace("alice@signer.example", "alice@example.com");
    const { r, t, queued } = await deliver(msg, { relay: true, from: "alice@example.com" });
    expect(r.code).toBe(250);
    const sig = /^DKIM-Signature: ([^]*?)\n(?=\S)/m.exec(queued)![1]!;
    expect(sig).toMatch(/d=example\.com;/);
    expect(sig).toMatch(/s=mail;/);
    expect(sig).toMatch(/c=relaxed\/relaxed;/);
    const signed = /(?:^|;)\s*h=([^;]*)/.exec(sig)![1]!.replace(/\s+/g, "").split(":").sort();
    expect(signed).toEqual(["Date", "From", "Message-ID", "Subject", "To"]);
    expect(t.transaction.notes("dkim_signing")).toBeUndefined(); // the transaction is over
    expect((await dkimpyVerify(queued, dns.port)).ok).toBe(true);
    // The private key is never logged.
    const keyBody = ours.pem.split("\n")[1]!;
    expect(t.logs.some((l) => l.message.includes(keyBody) || l.message.includes("PRIVATE KEY"))).toBe(false);
    expect(t.logs.some((l) => l.message === "signed as d=example.com s=mail")).toBe(true);
  });
  test("ed25519", async () => {
    const msg = MESSAGE.replace("alice@signer.example", "alice@ed.example");
    const { queued } = await deliver(msg, { relay: true, from: "alice@ed.example" });
    expect(queued).toContain("a=ed25519-sha256");
    expect((await dkimpyVerify(queued, dns.port)).ok).toBe(true);
  });
  test("a subdomain uses its parent's key; an alias symlink signs as its target; the envelope domain is the fallback", async () => {
    const sub = await deliver(MESSAGE.replace("alice@signer.example", "alice@host.example.com"), {
      relay: true,
      from: "x@host.example.com",
    });
    expect(sub.queued).toMatch(/d=example\.com;/);
    expect((await dkimpyVerify(sub.queued, dns.port)).ok).toBe(true);
    const alias = await deliver(MESSAGE.replace("alice@signer.example", "alice@alias.example"), { relay: true, from: "x@alias.example" });
    expect(alias.queued).toMatch(/d=example\.com;/);
    const envelope = await deliver(MESSAGE.replace("alice@signer.example", "alice@nokey.example"), { relay: true, from: "x@example.com" });
    expect(envelope.queued).toMatch(/d=example\.com;/);
  });
  test("no key, or a key directory without a selector: unsigned, logged", async () => {
    const none = await deliver(MESSAGE, { relay: true, from: "alice@signer.example" });
    expect(none.r.code).toBe(250);
    expect(none.queued).not.toContain("DKIM-Signature:");
    expect(none.t.logs.some((l) => l.message.startsWith("skip, no DKIM key in"))).toBe(true);
    const broken = await deliver(MESSAGE.replace("alice@signer.example", "a@noselector.example"), {
      relay: true,
      from: "a@noselector.example",
    });
    expect(broken.queued).not.toContain("DKIM-Signature:");
    expect(broken.t.logs.some((l) => l.message.includes("selector is missing"))).toBe(true);
  });
  test("findKey follows qpsmtpd's layout", () => {
    const dir = join(configDir, "dkim");
    expect(findKey(dir, "Example.COM")).toEqual({
      domain: "example.com",
      selector: "mail",
      key_file: join(configDir, "dkim", "example.com", "private"),
    });
    expect(findKey(dir, "a.b.example.com")).toMatchObject({ domain: "example.com" });
    expect(findKey(dir, "alias.example")).toMatchObject({ domain: "example.com" });
    expect(findKey(dir, "com")).toBeUndefined();
    expect(findKey(dir, "other.example")).toBeUndefined();
    // A domain from a message never becomes a path outside config/dkim.
    expect(findKey(dir, "x..")).toBeUndefined();
    expect(findKey(dir, "../dkim/example.com")).toBeUndefined();
  });
});

describe("dkim: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("dkim rejcet 0", "rejcet");
  });
});
