/**
 * arc: chains sealed by Debian's dkimpy verified into Authentication-Results (pass, fail after a
 * change, none, a DNS server that never answers), and the seal added for relay clients verified
 * by dkimpy, and by the plugin itself on the next hop.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { arcpySign, arcpyVerify, makeKey } from "../helpers/dkimpy.ts";
import { queuedMessage, withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const relayKey = makeKey("arc1");
const slowKey = makeKey("slow");
const ourKey = makeKey("seal");

const MESSAGE = [
  "Authentication-Results: relay.example; spf=pass smtp.mailfrom=list.example",
  "From: Alice <alice@list.example>",
  "To: list@list.example",
  "Subject: forwarded",
  "Date: Sun, 29 Nov 2026 10:00:00 +0000",
  "Message-ID: <fwd-1@list.example>",
  "",
  "Through a mailing list.",
  "",
].join("\n");

let dns: TestDnsServer;
let configDir: string;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "arc1._domainkey.relay.example": { TXT: [relayKey.txt] },
    "slow._domainkey.relay.example": { drop: true },
    "seal._domainkey.example.com": { TXT: [ourKey.txt] },
  });
  configDir = mkdtempSync(join(tmpdir(), "qparc-"));
  mkdirSync(join(configDir, "dkim", "example.com"), { recursive: true });
  writeFileSync(join(configDir, "dkim", "example.com", "private"), ourKey.pem, { mode: 0o600 });
  writeFileSync(join(configDir, "dkim", "example.com", "selector"), "seal\n");
});
afterAll(() => dns.stop());

function opts(plugins: string[], extra: TestSessionOptions = {}): TestSessionOptions {
  return withDnsServer(dns, {
    plugins: [...plugins, "rcpt_ok"],
    remoteIp: "192.0.2.10",
    configDirs: [configDir],
    ...extra,
    config: { me: "mx.test.example", rcpthosts: "example.org", ...extra.config },
  }, "0.3");
}

/**
 * One message through a session with `plugins`; the DATA reply, the queued message, its
 * Authentication-Results and the session (see queuedMessage). `config` goes on top of the test config.
 */
async function deliver(
  message: string,
  { plugins = ["arc"], config = {}, from = "alice@list.example", ...rest }: {
    plugins?: string[];
    relay?: boolean;
    from?: string;
    config?: Record<string, string>;
    atQueue?: () => void;
  } = {},
) {
  const d = await queuedMessage(opts(plugins, { config }), message, { from, ...rest });
  return { ...d, ar: /^Authentication-Results: (mx\.test\.example;.*)$/m.exec(d.queued)?.[1] ?? "" };
}

const sealed = () => arcpySign(MESSAGE, { domain: "relay.example", key: relayKey, srvId: "relay.example", port: dns.port });

describe("arc verifies chains dkimpy sealed", () => {
  test("a valid chain: arc=pass in Authentication-Results", async () => {
    const { r, t, ar } = await deliver(await sealed());
    expect(r.code).toBe(250);
    expect(ar).toMatch(/; arc=pass \(i=1 spf=pass\)/);
    expect(t.logs.some((l) => l.plugin === "arc" && l.message.startsWith("pass"))).toBe(true);
  });
  test("a body changed after sealing: arc=fail; accepted (ARC never refuses)", async () => {
    const { r, ar } = await deliver((await sealed()).replace("Through a mailing list.", "Through a mailing list!"));
    expect(r.code).toBe(250);
    expect(ar).toContain("arc=fail");
  });
  test("a message under size_threshold is verified from memory: no spool file is written for it", async () => {
    const spool = mkdtempSync(join(tmpdir(), "qparcspool-"));
    let files: string[] = ["not looked at"];
    const { r, t } = await deliver(await sealed(), {
      config: { size_threshold: "100000", spool_dir: spool },
      atQueue: () => (files = readdirSync(spool)),
    });
    expect(r.code).toBe(250);
    expect(t.logs.some((l) => l.plugin === "arc" && l.message.startsWith("pass"))).toBe(true);
    expect(files).toEqual([]);
  });
  test("no chain: arc=none", async () => {
    expect((await deliver(MESSAGE)).ar).toContain("; arc=none");
  });
  test("no ARC field: the answer given without the verifier is the verifier's own for that message", async () => {
    const { arc, dkimVerify } = await import("mailauth");
    for (const message of [MESSAGE, `${MESSAGE}ARC-Seal: only in the body\n`]) {
      const data = await dkimVerify(Buffer.from(message.replace(/\n/g, "\r\n")), { strict: true } as never);
      const own = await arc(data.arc as never, { strict: true } as never) as { info: string };
      const { t, ar } = await deliver(message);
      expect(ar).toEndWith(`; ${own.info}`);
      expect(t.logs.some((l) => l.plugin === "arc" && l.message === "none")).toBe(true);
    }
  });
  test("any one ARC field, or one whose name is folded or spaced, is read by the verifier", async () => {
    const lone = await deliver(MESSAGE.replace("From:", "ARC-Authentication-Results: i=1; relay.example; spf=pass\nFrom:"));
    expect(lone.ar).toContain("arc=fail (i=1 no arc-seal set)");
    const seal = "i=1; a=rsa-sha256; cv=none; d=relay.example; s=arc1; t=1; b=abc";
    for (const name of ["ARC-Seal\n :", "arc-SEAL\t:"]) {
      const folded = await deliver(MESSAGE.replace("From:", `${name} ${seal}\nFrom:`));
      expect(folded.ar).toContain("arc=fail (i=1 no arc-message-signature set)");
    }
    const chain = await sealed();
    for (const name of ["ARC-Seal\r\n :", "arc-seal :"]) {
      expect((await deliver(chain.replace(/^ARC-Seal:/m, name))).ar).toMatch(/; arc=pass \(i=1 spf=pass\)/);
    }
  });
  test("a key lookup that never answers: fail, logged, no crash", async () => {
    const msg = await arcpySign(MESSAGE, { domain: "relay.example", key: slowKey, srvId: "relay.example", port: dns.port });
    const { r, t, ar } = await deliver(msg);
    expect(r.code).toBe(250);
    expect(ar).toContain("arc=fail");
    expect(t.logs.some((l) => l.plugin === "arc" && l.message.startsWith("fail"))).toBe(true);
  });
  test("a broken ARC-Seal: fail", async () => {
    const broken = (await sealed()).replace(/^ARC-Seal: /m, "ARC-Seal: i=7; ");
    expect((await deliver(broken)).ar).toContain("arc=fail");
  });
});

describe("arc seals relay clients' mail with the DKIM key", () => {
  const outbound = MESSAGE.replace(/^Authentication-Results:.*\n/, "").replaceAll("list.example", "example.com");
  test("i=1 cv=none, verified by dkimpy and by the plugin on the next hop", async () => {
    const { r, t, queued } = await deliver(outbound, { plugins: ["dkim", "arc"], relay: true, from: "alice@example.com" });
    expect(r.code).toBe(250);
    const lines = queued.split("\n");
    expect(lines[0]).toMatch(/^ARC-Seal: i=1; a=rsa-sha256; .*cv=none; d=example\.com; s=seal/);
    expect(queued).toMatch(/^ARC-Message-Signature: i=1;/m);
    expect(queued).toMatch(/^ARC-Authentication-Results: i=1; mx\.test\.example; auth=none/m);
    expect(t.logs.some((l) => l.plugin === "arc" && l.message === "sealed as d=example.com s=seal, cv=none")).toBe(true);
    expect(await arcpyVerify(queued, dns.port)).toMatch(/^pass/);
    const next = await deliver(queued);
    expect(next.ar).toMatch(/arc=pass \(i=1/);
  });
  test("a chain already on the message is continued: i=2 cv=pass; a broken one gets cv=fail", async () => {
    const forwarded = `Authentication-Results: relay.example; spf=pass smtp.mailfrom=example.com\n${outbound}`;
    const chained = await arcpySign(forwarded, { domain: "relay.example", key: relayKey, srvId: "relay.example", port: dns.port });
    const relayed = { plugins: ["dkim", "arc"], relay: true, from: "alice@example.com" };
    const good = await deliver(chained, relayed);
    expect(good.queued).toMatch(/^ARC-Seal: i=2; .*cv=pass/);
    expect(await arcpyVerify(good.queued, dns.port)).toMatch(/^pass/);
    const bad = await deliver(chained.replace("Subject: forwarded", "Subject: changed"), relayed);
    expect(bad.queued).toMatch(/^ARC-Seal: i=2; .*cv=fail/);
    expect(await arcpyVerify(bad.queued, dns.port)).toMatch(/^fail/);
  });
  test("without a DKIM key: not sealed, logged", async () => {
    const { r, t, queued } = await deliver(outbound.replaceAll("example.com", "nokey.example"), {
      plugins: ["dkim", "arc"],
      relay: true,
      from: "alice@nokey.example",
    });
    expect(r.code).toBe(250);
    expect(queued).not.toContain("ARC-Seal");
    expect(t.logs.some((l) => l.plugin === "arc" && l.message.startsWith("skip, not signed by the dkim plugin"))).toBe(true);
  });
});

describe("arc arguments", () => {
  test("none but timeout and loglevel: a misspelt one stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("arc loglevl 7", "loglevl");
    await TestSession.start({ plugins: ["arc loglevel 7 timeout 5"] }); // the engine's own
  });
});
