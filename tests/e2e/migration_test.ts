/**
 * A real qpsmtpd installation migrates unchanged: Debian's qpsmtpd 0.94 /etc/qpsmtpd (a
 * fixture) passes `qpsmtpd check` and serves mail with dist/qpsmtpd; every name of qpsmtpd
 * 0.94's bundle resolves or fails with its replacement; `qpsmtpd tls-cert` and `qpsmtpd karma`
 * work against swaks and the running daemon.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QPSMTPD_094_BUNDLE, UNSUPPORTED } from "../../src/plugin/aliases.ts";
import { BUILTINS } from "../../plugins/mod.ts";
import { debianCopy } from "../helpers/debian.ts";
import { BINARY, configDir, type Daemon, freePort, run, startDaemon, swaks, TLS_DIR } from "./helpers.ts";

const running: Daemon[] = [];
afterAll(async () => {
  for (const d of running) d.proc.kill("SIGKILL");
});

async function daemon(dir: string): Promise<Daemon> {
  const d = await startDaemon(dir);
  running.push(d);
  return d;
}

describe("Debian's qpsmtpd 0.94 configuration, copied", () => {
  test("passes qpsmtpd check, listing what each old name became", async () => {
    const { dir } = debianCopy();
    const r = await run([BINARY, "check", "--config", dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${dir}/plugins:28: check_earlytalker action log -> alias of earlytalker reject 0\n`);
    expect(r.out).toContain(`${dir}/plugins:97: check_loop -> alias of loop\n`);
    expect(r.out).toContain("qpsmtpd check: warning: no queue plugin: every message will get 451");
    expect(r.out).toContain("OK, 10 plugins loaded");
  });

  test("serves a session end to end; without a queue plugin, as in qpsmtpd, DATA ends in 451", async () => {
    const { dir, log } = debianCopy();
    appendFileSync(join(dir, "badmailfrom"), "spammer@example.net\n");
    appendFileSync(join(dir, "badhelo"), "yahoo.com\n");
    const d = await daemon(dir);
    // 127.0.0.1 is in Debian's relayclients; 127.0.0.2 (still loopback) is an outsider.
    const out = ["--local-interface", "127.0.0.2"];
    const local = await swaks(d.port, ...out, "--to", "user@example.org", "--from", "someone@example.net", "--helo", "client.example.net");
    expect(local.out).toContain("<-  250 2.1.5 <user@example.org>, recipient ok");
    expect(local.out).toContain("<** 451 4.3.0 Queuing declined or disabled; try again later");
    const relay = await swaks(d.port, ...out, "--to", "victim@elsewhere.test", "--from", "someone@example.net", "--quit-after", "RCPT");
    expect(relay.out).toContain("<** 550 5.7.1 Relaying denied (#5.7.1)");
    const friend = await swaks(d.port, "--to", "victim@elsewhere.test", "--from", "someone@example.net", "--quit-after", "RCPT");
    expect(friend.out).toContain("<-  250 2.1.5 <victim@elsewhere.test>, recipient ok"); // a relay client
    const bad = await swaks(d.port, ...out, "--to", "user@example.org", "--from", "spammer@example.net", "--quit-after", "MAIL");
    expect(bad.out).toContain("<** 550 5.7.1 Your envelope sender is in my badmailfrom list");
    const helo = await swaks(d.port, ...out, "--helo", "yahoo.com", "--quit-after", "HELO");
    expect(helo.out).toContain("<** 550 I do not believe you are yahoo.com.");
    // logging/file from Debian's config/logging, at LOGINFO, names the old plugin names.
    const text = readFileSync(log, "utf8");
    expect(text).toMatch(/\(connect\) check_earlytalker: pass, 127\.0\.0\.2 said nothing spontaneous\n/);
    expect(text).toMatch(/\(mail\) check_badmailfrom: /);
  });
});

describe("every name of qpsmtpd 0.94's bundle through qpsmtpd check", () => {
  // The arguments a name needs to load here (peers need not answer: those are warnings).
  const args: Record<string, string> = {
    "queue/maildir": "MAILDIR",
    "queue/smtp-forward": "127.0.0.1 25",
    "async/queue/smtp-forward": "127.0.0.1 25",
    tls: `${TLS_DIR}/server.crt ${TLS_DIR}/server.key`,
    "ident/p0f": "/nonexistent/p0f.sock",
    http_config: "http://127.0.0.1:1/",
    "logging/file": "LOGDIR/qp.log",
    "logging/apache": "LOGDIR/apache.log",
    rcpt_map: "domain example.org file MAP",
    milter: "test 127.0.0.1:1",
    "auth/auth_ldap_bind": "ldap_base dc=example,dc=org",
  };
  // Plugins other people are writing now: the name must resolve; whether it loads with these
  // arguments is their plugin's business (and their own tests').
  const others = new Set([
    "auth/auth_ldap_bind",
    "auth/auth_vpopmaild",
    "queue/exim-bsmtp",
    "queue/postfix-queue",
    "queue/qmail-queue",
    "spamassassin",
    "virus/clamav",
    "virus/clamdscan",
    "sender_permitted_from",
    "dkim",
    "dmarc",
    "domainkeys",
    "milter",
  ]);

  test("loads, or fails with the specific text naming the replacement", async () => {
    const dir = configDir({ map: "a@example.org OK\n" });
    const plugins = QPSMTPD_094_BUNDLE.map((n) =>
      `${n} ${(args[n] ?? "").replace("MAILDIR", join(dir, "Maildir")).replace("LOGDIR", dir).replace("MAP", join(dir, "map"))}`.trim()
    );
    writeFileSync(join(dir, "plugins"), plugins.join("\n") + "\n");
    const r = await run([BINARY, "check", "--config", dir]);
    expect(r.code).toBe(1); // the unsupported names would stop the daemon
    const report = new Map<string, string>();
    for (const line of r.out.split("\n")) {
      const m = /^\S+\/plugins:(\d+): (\S+).* -> (.*)$/.exec(line);
      if (m) report.set(m[2]!, m[3]!);
    }
    expect(report.size).toBe(QPSMTPD_094_BUNDLE.length);
    for (const name of QPSMTPD_094_BUNDLE) {
      const what = report.get(name);
      const u = UNSUPPORTED[name];
      if (u) expect(what).toBe(`plugin ${name} is not available in qpsmtpd.ts (${u.what}): ${u.use}`);
      else if (!others.has(name)) expect([name, what]).toEqual([name, expect.stringMatching(/^(built-in|alias of \S+)/)]);
      else if (BUILTINS[name]) expect([name, what]).toEqual([name, expect.not.stringMatching(/not found|not available/)]);
    }
  });

  test("an unsupported name stops the daemon at start-up with the same text", async () => {
    const dir = configDir({ plugins: "rcpt_ok\nvirus/kavscanner\n", rcpthosts: "example.org\n" });
    const r = await run([BINARY, "--config", dir, "-l", "127.0.0.1", "-p", String(await freePort())]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      `${dir}/plugins:2: plugin virus/kavscanner is not available in qpsmtpd.ts (the Kaspersky command-line scanner (discontinued)): use virus/clamdscan`,
    );
  });
});

describe("qpsmtpd tls-cert and qpsmtpd karma", () => {
  test("tls-cert writes the certificate the tls plugin then serves to swaks", async () => {
    const dir = configDir({ me: "mx.example.org\n", rcpthosts: "example.org\n", plugins: "tls\nrcpt_ok\nqueue/discard\n" });
    const made = await run([BINARY, "tls-cert", "--config", dir]);
    expect(made.code).toBe(0);
    expect(made.out).toContain(`wrote ${dir}/ssl/qpsmtpd-server.crt`);
    expect(made.out).toContain("the certificate is for mx.example.org");
    const again = await run([BINARY, "tls-cert", "--config", dir]);
    expect([again.code, again.out]).toEqual([1, `qpsmtpd: ${dir}/ssl/qpsmtpd-server.crt exists (use --force to replace it)\n`]);
    const d = await daemon(dir);
    const peer = join(mkdtempSync(join(tmpdir(), "qppeer-")), "peer.pem");
    const r = await swaks(d.port, "--tls", "--tls-get-peer-cert", peer, "--to", "user@example.org");
    expect(r.out).toContain("250 2.0.0 Queued (discarded)");
    expect(existsSync(peer)).toBe(true);
    const norm = (s: string) => s.replace(/\s+/g, "");
    expect(norm(readFileSync(peer, "utf8"))).toBe(norm(readFileSync(join(dir, "ssl", "qpsmtpd-server.crt"), "utf8")));
  });

  test("karma capture refuses the address at once on the running daemon; release lets it in", async () => {
    const db = mkdtempSync(join(tmpdir(), "qpkarmadb-"));
    const dir = configDir({ rcpthosts: "example.org\n", plugins: `karma db_dir ${db} penalty_days 3\nrcpt_ok\nqueue/discard\n` });
    const d = await daemon(dir);
    expect((await swaks(d.port, "--to", "user@example.org")).out).toContain("250 2.0.0 Queued");
    const cap = await run([BINARY, "karma", "--config", dir, "capture", "127.0.0.1"]);
    expect(cap.code).toBe(0);
    expect(cap.out).toContain("127.0.0.1 is in the penalty box until");
    const refused = await swaks(d.port, "--to", "user@example.org", "--quit-after", "CONNECT");
    expect(refused.out).toContain("<** 450 You were naughty. You cannot connect for 3 more days.");
    const list = await run([BINARY, "karma", "--config", dir, "list"]);
    expect(list.out).toMatch(/^127\.0\.0\.1 +\d{4}-\d\d-\d\d \d\d:\d\d +1 +0 +\d+$/m);
    expect((await run([BINARY, "karma", "--config", dir, "release", "127.0.0.1"])).code).toBe(0);
    expect((await swaks(d.port, "--to", "user@example.org")).out).toContain("250 2.0.0 Queued");
  });
});
