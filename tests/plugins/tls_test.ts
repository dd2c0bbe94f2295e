/** tls: STARTTLS and the certificate (the test transport fakes the handshake itself). */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument, loadWarnings } from "../helpers/plugin_args.ts";

const TLS = join(import.meta.dir, "../fixtures/tls");
const tls = [`tls ${TLS}/server.crt ${TLS}/server.key`];
const b64 = (s: string): string => Buffer.from(s).toString("base64");

describe("tls", () => {
  test("EHLO advertises STARTTLS until TLS is up; STARTTLS answers 220 and upgrades", async () => {
    const t = await TestSession.start({ plugins: tls });
    expect((await t.command("EHLO c")).lines).toContain("STARTTLS");
    expect(t.connection.tls).toBeFalsy();
    const r = await t.command("STARTTLS");
    expect(r.code).toBe(220);
    expect(r.text).toContain("Go ahead with TLS");
    expect(t.tlsStarted).toBe(1);
    expect(t.connection.tls).toBeTruthy();
    expect(t.connection.tls_cipher).toBe("TEST-CIPHER");
    expect(t.logs.some((l) => l.hook === "unrecognized_command" && l.message === "TLS established: TEST-CIPHER")).toBe(true);
    const again = await t.command("EHLO c");
    expect(again.code).toBe(250);
    expect(again.lines).not.toContain("STARTTLS");
  });

  test("a parameter, a second STARTTLS, or STARTTLS after AUTH is refused with its reply", async () => {
    const t = await TestSession.start({ plugins: tls });
    await t.command("EHLO c");
    expect(await t.command("STARTTLS now")).toMatchObject({ code: 501, status: "5.5.4", text: "Syntax error (no parameters allowed)" });
    expect(t.tlsStarted).toBe(0);
    await t.command("STARTTLS");
    await t.command("EHLO c");
    expect(await t.command("STARTTLS")).toMatchObject({ code: 554, status: "5.5.1", text: "TLS already active" });
    expect(t.tlsStarted).toBe(1);
    const a = await TestSession.start({ plugins: [...tls, "auth/auth_flat_file"], config: { flat_auth_pw: "u@example.org:pw" } });
    await a.command("EHLO c");
    expect((await a.command(`AUTH PLAIN ${b64("\0u@example.org\0pw")}`)).code).toBe(235);
    expect(await a.command("STARTTLS")).toMatchObject({ code: 503, status: "5.5.1", text: "Already authenticated" });
    expect(a.tlsStarted).toBe(0);
  });

  test("cert and key default to ssl/qpsmtpd-server.* in the config directory; relative paths are found there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qptls-"));
    mkdirSync(join(dir, "ssl"));
    copyFileSync(join(TLS, "server.crt"), join(dir, "ssl", "qpsmtpd-server.crt"));
    copyFileSync(join(TLS, "server.key"), join(dir, "ssl", "qpsmtpd-server.key"));
    mkdirSync(join(dir, "certs"));
    copyFileSync(join(TLS, "server.crt"), join(dir, "certs", "mx.crt"));
    copyFileSync(join(TLS, "server.key"), join(dir, "certs", "mx.key"));
    for (const line of ["tls", "tls certs/mx.crt certs/mx.key"]) {
      const t = await TestSession.start({ plugins: [line], configDirs: [dir] });
      expect((await t.command("EHLO c")).lines).toContain("STARTTLS");
      expect((await t.command("STARTTLS")).code).toBe(220);
      expect(t.tlsStarted).toBe(1);
    }
  });

  test("a certificate that cannot be read stops the load, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qptls-"));
    await expect(TestSession.start({ plugins: ["tls"], configDirs: [dir] })).rejects.toThrow(/cannot read .*qpsmtpd-server\.crt/);
    await expect(TestSession.start({ plugins: [`tls ${TLS}/server.crt ${dir}/missing.key`] })).rejects.toThrow(
      `cannot read ${dir}/missing.key`,
    );
  });
});

describe("tls: unknown arguments", () => {
  test("qpsmtpd's fourth path, dhparam, loads and says once that it has no effect", async () => {
    const { log, t } = await loadWarnings(`tls ${TLS}/server.crt ${TLS}/server.key ${TLS}/server.crt ssl/qpsmtpd-dhparam.pem`);
    expect(log.match(/tls: dhparam ssl\/qpsmtpd-dhparam\.pem has no effect/g)).toHaveLength(1);
    expect((await t.command("EHLO c")).lines).toContain("STARTTLS");
  });
  test("a fifth word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument(`tls ${TLS}/server.crt ${TLS}/server.key ${TLS}/server.crt dh.pem ciphers`, "ciphers");
  });
});
