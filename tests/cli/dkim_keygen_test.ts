/**
 * dkim-keygen: writes a key as qpsmtpd's dkim_key_gen.sh lays it out, returns the record to
 * publish; the dkim plugin signs with the key and dkimpy verifies with the record.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { defaultSelector, dkimKeygen } from "../../src/cli/dkim_keygen.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { dkimpyVerify } from "../helpers/dkimpy.ts";
import { withDnsServer } from "../helpers/sessions.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({});
});
afterAll(() => dns.stop());

/** The record's strings, as a DNS server would serve them. */
const strings = (record: string) => [...record.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);

async function signAndVerify(dir: string, domain: string): Promise<boolean> {
  const t = await TestSession.start(withDnsServer(dns, {
    plugins: ["dkim", "rcpt_ok"],
    configDirs: [dir],
    config: { rcpthosts: "example.org" },
  }, "1"));
  t.connection.relay_client(true);
  let queued = "";
  t.mockHook("queue", async (txn) => {
    for await (const c of txn.message_stream()) queued += Buffer.from(c).toString("latin1");
    return OK;
  });
  await t.command("EHLO c");
  await t.command(`MAIL FROM:<a@${domain}>`);
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  expect((await t.data(`From: a@${domain}\nTo: b@example.org\nSubject: keygen\n\nsigned\n`)).code).toBe(250);
  expect(queued).toContain(`d=${domain};`);
  return (await dkimpyVerify(queued, dns.port)).ok;
}

describe("dkim-keygen", () => {
  test("rsa: the files, their modes, the record; signed mail verifies with the record", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkeygen-"));
    const k = dkimKeygen(dir, "Example.COM", undefined, { now: new Date("2026-11-29T12:00:00Z") });
    expect(k.selector).toBe("nov2026");
    expect(k.name).toBe("nov2026._domainkey.example.com");
    expect(k.record).toMatch(/^nov2026\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=MII/);
    expect(strings(k.record).every((s) => s.length <= 255)).toBe(true);
    expect(strings(k.record).join("")).toBe(k.value);
    expect(statSync(join(dir, "dkim/example.com/private")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, "dkim/example.com/selector"), "utf8")).toBe("nov2026\n");
    expect(readFileSync(join(dir, "dkim/example.com/dns"), "utf8")).toBe(`${k.record}\n`);
    expect(readFileSync(join(dir, "dkim/example.com/private"), "utf8")).toContain("BEGIN PRIVATE KEY");
    dns.zone[k.name] = { TXT: [strings(k.record)] };
    expect(await signAndVerify(dir, "example.com")).toBe(true);
  });
  test("ed25519 with a chosen selector", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkeygen-"));
    const k = dkimKeygen(dir, "ed.example", "s2026", { type: "ed25519" });
    expect(k.value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    dns.zone[k.name] = { TXT: [k.value] };
    expect(await signAndVerify(dir, "ed.example")).toBe(true);
  });
  test("refuses to overwrite a key, a bad domain or selector, a short RSA key", () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkeygen-"));
    dkimKeygen(dir, "example.net", "a");
    expect(() => dkimKeygen(dir, "example.net", "b")).toThrow(/exists/);
    expect(dkimKeygen(dir, "example.net", "b", { force: true }).selector).toBe("b");
    expect(() => dkimKeygen(dir, "localhost", "a")).toThrow(/not a domain name/);
    expect(() => dkimKeygen(dir, "example.org", "bad selector")).toThrow(/not a valid selector/);
    expect(() => dkimKeygen(dir, "example.org", "a", { bits: 512 })).toThrow(/RFC 8301/);
    expect(defaultSelector(new Date("2027-01-05T00:00:00Z"))).toBe("jan2027");
  });
});

describe("qpsmtpd dkim-keygen", () => {
  test("the subcommand writes the key into --config and prints the record; a second run is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkeygen-"));
    const run = (...args: string[]) =>
      Bun.spawnSync([process.execPath, join(import.meta.dir, "../../src/main.ts"), "dkim-keygen", "--config", dir, ...args]);
    const r = run("example.org", "cli1", "--ed25519");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/cli1\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=ed25519; p=/);
    expect(readFileSync(join(dir, "dkim/example.org/selector"), "utf8")).toBe("cli1\n");
    const again = run("example.org", "cli2");
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr.toString()).toMatch(/exists/);
    expect(run().exitCode).not.toBe(0);
  });
});
