/**
 * `qpsmtpd tls-cert` (src/cli/tls_cert.ts): the certificate is read by the real openssl, signed
 * by its own key, and loaded by the tls plugin from where it looks by default.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selfSignedCertificate, tlsPaths, writeTlsCert } from "../../src/cli/tls_cert.ts";
import { TestSession } from "../../src/testing/harness.ts";

const openssl = (args: string[], input?: string) => spawnSync("openssl", args, { input, encoding: "utf8" });

describe("qpsmtpd tls-cert", () => {
  test("openssl reads the certificate: subject, SAN, server use, validity, and the key is its own", () => {
    const now = Date.UTC(2030, 0, 15, 12, 0, 0);
    const { cert, key } = selfSignedCertificate({
      subject: { CN: "mx.example.org", C: "XY", O: "QPSMTPD", OU: "Server", emailAddress: "postmaster@mx.example.org" },
      days: 365,
      now,
    });
    const text = openssl(["x509", "-noout", "-text"], cert).stdout;
    expect(text).toContain("Version: 3 (0x2)");
    expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
    expect(text).toMatch(
      /Subject: C\s*=\s*XY, O\s*=\s*QPSMTPD, OU\s*=\s*Server, CN\s*=\s*mx\.example\.org, emailAddress\s*=\s*postmaster@mx\.example\.org/,
    );
    expect(text).toContain("DNS:mx.example.org");
    expect(text).toContain("TLS Web Server Authentication");
    expect(text).toContain("CA:FALSE");
    expect(text).toContain("Public-Key: (2048 bit)");
    expect(openssl(["x509", "-noout", "-startdate", "-enddate"], cert).stdout).toBe(
      "notBefore=Jan 15 11:59:00 2030 GMT\nnotAfter=Jan 15 12:00:00 2031 GMT\n",
    );
    const dir = mkdtempSync(join(tmpdir(), "qpcert-"));
    const certFile = join(dir, "c.pem");
    writeFileSync(certFile, cert);
    // Self-signed: it verifies against itself (at a time inside its validity).
    expect(openssl(["verify", "-attime", String(now / 1000 + 3600), "-CAfile", certFile, certFile]).stdout).toBe(`${certFile}: OK\n`);
    const pubOfCert = openssl(["x509", "-noout", "-pubkey"], cert).stdout;
    const pubOfKey = openssl(["pkey", "-pubout"], key).stdout;
    expect(pubOfCert).toBe(pubOfKey);
    expect(pubOfCert).toStartWith("-----BEGIN PUBLIC KEY-----");
  });

  test("writes where the tls plugin looks by default; the key is private; no silent overwrite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpcert-"));
    const written = writeTlsCert(dir, { subject: { CN: "mx.example.org" } });
    const paths = tlsPaths(dir);
    expect(written).toEqual([paths.cert, paths.key]);
    expect(paths.cert).toBe(join(dir, "ssl", "qpsmtpd-server.crt"));
    expect(statSync(paths.key).mode & 0o777).toBe(0o600);
    expect(() => writeTlsCert(dir, { subject: { CN: "x" } })).toThrow(`${paths.cert} exists (use --force to replace it)`);
    const before = readFileSync(paths.cert, "utf8");
    writeTlsCert(dir, { subject: { CN: "mx.example.org" }, force: true });
    expect(readFileSync(paths.cert, "utf8")).not.toBe(before);
    // The tls plugin with no arguments finds them and offers STARTTLS.
    const t = await TestSession.start({ plugins: ["tls"], configDirs: [dir] });
    expect((await t.command("EHLO c")).lines).toContain("STARTTLS");
  });

  test("a certificate ending after 2049 uses GeneralizedTime, as RFC 5280 asks", () => {
    const { cert } = selfSignedCertificate({ subject: { CN: "late.example" }, now: Date.UTC(2049, 11, 1), days: 60 });
    expect(openssl(["x509", "-noout", "-enddate"], cert).stdout).toBe("notAfter=Jan 30 00:00:00 2050 GMT\n");
  });
});
