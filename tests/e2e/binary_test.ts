/**
 * End to end against dist/qpsmtpd over real sockets, with real clients: swaks, Python's
 * smtplib and Postfix's smtp-sink as the next hop.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILTINS } from "../../plugins/mod.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import {
  BINARY,
  configDir,
  type Daemon,
  EXAMPLE_PLUGINS,
  freePort,
  RawClient,
  ROOT,
  run,
  startDaemon,
  swaks,
  TLS_DIR,
  waitForPort,
} from "./helpers.ts";

const running: Daemon[] = [];
afterAll(async () => {
  for (const d of running) d.proc.kill("SIGKILL");
});

function mailConfig(plugins: string[], extra: Record<string, string> = {}): { dir: string; maildir: string } {
  const maildir = join(mkdtempSync(join(tmpdir(), "qpmd-")), "Maildir");
  const dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\n",
    plugins: [...plugins, `queue/maildir ${maildir}`].join("\n") + "\n",
    logging: "logging/warn LOGINFO\n",
    ...extra,
  });
  return { dir, maildir };
}

async function daemon(dir: string, opts: Parameters<typeof startDaemon>[1] = {}): Promise<Daemon> {
  const d = await startDaemon(dir, opts);
  running.push(d);
  return d;
}

const newMessages = (maildir: string): string[] =>
  existsSync(join(maildir, "new")) ? readdirSync(join(maildir, "new")).map((f) => readFileSync(join(maildir, "new", f), "utf8")) : [];

describe("dist/qpsmtpd with swaks", () => {
  test("delivers for a local domain into the Maildir and refuses to relay", async () => {
    const { dir, maildir } = mailConfig(["relay", "rcpt_ok"]);
    const d = await daemon(dir);
    const ok = await swaks(d.port, "--to", "user@example.org", "--from", "a@example.net", "--header", "Subject: e2e one");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/<- {2}250 2\.0\.0 Queued!/);
    const relay = await swaks(d.port, "--to", "victim@evil.test", "--from", "a@example.net", "--quit-after", "RCPT");
    expect(relay.out).toContain("<** 550 5.7.1 Relaying denied (#5.7.1)");
    const msgs = newMessages(maildir);
    expect(msgs.length).toBe(1);
    expect(msgs[0]).toContain("Subject: e2e one");
    expect(msgs[0]).toContain("Delivered-To: user@example.org");
    expect(msgs[0]).toMatch(/Received: from Unknown \(HELO [^)]+\) \(127\.0\.0\.1\)\n by mx\.example\.org \(qpsmtpd\/[^)]+\) with ESMTP;/);
  });

  test("STARTTLS and AUTH PLAIN: an authenticated client may relay, over TLS", async () => {
    const { dir, maildir } = mailConfig([`tls ${TLS_DIR}/server.crt ${TLS_DIR}/server.key`, "auth/auth_flat_file", "relay", "rcpt_ok"], {
      flat_auth_pw: "user@example.org:s3cret\n",
      tls_before_auth: "1\n",
    });
    const d = await daemon(dir);
    const plain = await swaks(
      d.port,
      "--to",
      "x@elsewhere.example",
      "--auth",
      "PLAIN",
      "--auth-user",
      "user@example.org",
      "--auth-password",
      "s3cret",
      "--quit-after",
      "AUTH",
    );
    expect(plain.out).toContain("Host did not advertise authentication");
    const r = await swaks(
      d.port,
      "--tls",
      "--to",
      "x@elsewhere.example",
      "--from",
      "user@example.org",
      "--auth",
      "PLAIN",
      "--auth-user",
      "user@example.org",
      "--auth-password",
      "s3cret",
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain("235 2.7.0 PLAIN authentication successful for user@example.org");
    const msgs = newMessages(maildir);
    expect(msgs.length).toBe(1);
    expect(msgs[0]).toMatch(/with ESMTPSA \(TLS_[A-Z0-9_]+ encrypted\);/);
    expect(msgs[0]).toContain("auth=pass (plain) smtp.auth=user@example.org");
    const bad = await swaks(
      d.port,
      "--tls",
      "--to",
      "x@elsewhere.example",
      "--auth",
      "LOGIN",
      "--auth-user",
      "user@example.org",
      "--auth-password",
      "wrong",
    );
    expect(bad.out).toContain("535 5.7.8 LOGIN authentication failed for user@example.org from 127.0.0.1");
  });

  test("implicit TLS on a second listener (port 465 style)", async () => {
    const { dir, maildir } = mailConfig([`tls ${TLS_DIR}/server.crt ${TLS_DIR}/server.key`, "rcpt_ok"]);
    const tlsPort = await freePort();
    const d = await daemon(dir, { args: ["--tls-port", String(tlsPort)] });
    await waitForPort(tlsPort);
    const r = await swaks(tlsPort, "--tlsc", "--to", "user@example.org");
    expect(r.code).toBe(0);
    expect(r.out).toContain("250 2.0.0 Queued!");
    expect(r.out).not.toContain("STARTTLS");
    expect(newMessages(maildir)[0]).toMatch(/with ESMTPS \(TLS_/);
    const plain = await swaks(tlsPort, "--to", "user@example.org", "--timeout", "3");
    expect(plain.code).not.toBe(0);
    expect(d.port).toBeGreaterThan(0);
  });

  test("a disk plugin with a relative import, in plugin_dirs, loaded by a copied binary", async () => {
    const home = mkdtempSync(join(tmpdir(), "qphome-"));
    mkdirSync(join(home, "bin"));
    copyFileSync(BINARY, join(home, "bin", "qpsmtpd"));
    await run(["chmod", "+x", join(home, "bin", "qpsmtpd")]);
    const { dir } = mailConfig(["deny_bob", "rcpt_ok"], { plugin_dirs: `${EXAMPLE_PLUGINS}\n` });
    const d = await daemon(dir, { cmd: [join(home, "bin", "qpsmtpd")] });
    const bob = await swaks(d.port, "--to", "bob@example.org", "--quit-after", "RCPT");
    expect(bob.out).toContain("<** 550 5.7.1 no mail for bob");
    const alice = await swaks(d.port, "--to", "alice@example.org");
    expect(alice.code).toBe(0);
  });
});

describe("dist/qpsmtpd with other clients", () => {
  test("Python smtplib: pipelined envelope with several recipients", async () => {
    const { dir, maildir } = mailConfig(["rcpt_ok"]);
    const d = await daemon(dir);
    const py = `
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "a@example.net"; m["To"] = "x@example.org"; m["Subject"] = "from python"
m.set_content("line one\\n.line with a dot\\n")
with smtplib.SMTP("127.0.0.1", ${d.port}, timeout=20) as s:
    s.ehlo("py.example")
    assert s.has_extn("pipelining"), s.esmtp_features
    refused = s.send_message(m, to_addrs=["x@example.org", "y@example.org", "z@evil.test"])
    print("REFUSED", sorted(refused))
`;
    const r = await run(["python3", "-c", py]);
    expect(r.out).toContain("REFUSED ['z@evil.test']");
    const msgs = newMessages(maildir);
    expect(msgs.length).toBe(1);
    expect(msgs[0]).toContain("Delivered-To: y@example.org\nDelivered-To: x@example.org\n"); // qpsmtpd's order: the last first
    expect(msgs[0]).toContain("\n.line with a dot\n");
  });

  test("queue/smtp-forward into Postfix's smtp-sink; a 5xx downstream stays 5xx", async () => {
    const sinkPort = await freePort();
    const dump = mkdtempSync(join(tmpdir(), "qpsink-"));
    chmodSync(dump, 0o777); // smtp-sink writes as nobody
    const sink = Bun.spawn(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", `${dump}/%M.`, `127.0.0.1:${sinkPort}`, "10"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    const rejecting = await freePort();
    const sink5 = Bun.spawn(["/usr/sbin/smtp-sink", "-u", "nobody", "-f", "RCPT", `127.0.0.1:${rejecting}`, "10"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      await waitForPort(sinkPort);
      await waitForPort(rejecting);
      const a = await daemon(
        configDir({ me: "mx.example.org\n", rcpthosts: "example.org\n", plugins: `rcpt_ok\nqueue/smtp-forward 127.0.0.1 ${sinkPort}\n` }),
      );
      const ok = await swaks(a.port, "--to", "user@example.org", "--header", "Subject: via sink", "--body", "hello sink\n.dotted\n");
      expect(ok.out).toMatch(/<- {2}250 2\.0\.0 Queued: 2\.0\.0 Ok/);
      await Bun.sleep(200);
      const text = readdirSync(dump, { recursive: true })
        .map((f) => join(dump, String(f)))
        .filter((f) => statSync(f).isFile())
        .map((f) => readFileSync(f, "latin1"))
        .join("");
      expect(text).toContain("Subject: via sink");
      expect(text).toContain("\nhello sink\n.dotted\n");
      const b = await daemon(
        configDir({ me: "mx.example.org\n", rcpthosts: "example.org\n", plugins: `rcpt_ok\nqueue/smtp-forward 127.0.0.1 ${rejecting}\n` }),
      );
      const no = await swaks(b.port, "--to", "user@example.org");
      expect(no.out).toMatch(/<\*\* 552 5\.\d\.\d+ every recipient refused by 127\.0\.0\.1: 5\d\d/);
    } finally {
      sink.kill();
      sink5.kill();
    }
  });
});

describe("the daemon's process behaviour", () => {
  test("SIGHUP loads an edited plugin list for new connections; a broken one keeps the old set", async () => {
    const { dir } = mailConfig(["rcpt_ok"], { plugin_dirs: `${EXAMPLE_PLUGINS}\n` });
    const d = await daemon(dir);
    expect((await swaks(d.port, "--to", "bob@example.org", "--quit-after", "RCPT")).out).toContain(
      "<-  250 2.1.5 <bob@example.org>, recipient ok",
    );
    const held = await RawClient.connect(d.port);
    await held.reply();
    const plugins = readFileSync(join(dir, "plugins"), "utf8");
    writeFileSync(join(dir, "plugins"), `deny_bob\n${plugins}`);
    d.proc.kill("SIGHUP");
    await Bun.sleep(500);
    expect((await swaks(d.port, "--to", "bob@example.org", "--quit-after", "RCPT")).out).toContain("<** 550 5.7.1 no mail for bob");
    // the connection opened before the reload keeps the old chain
    await held.command("HELO c");
    await held.command("MAIL FROM:<a@example.net>");
    expect((await held.command("RCPT TO:<bob@example.org>")).code).toBe(250);
    held.close();
    writeFileSync(join(dir, "plugins"), `no_such_plugin\n${plugins}`);
    d.proc.kill("SIGHUP");
    await Bun.sleep(500);
    expect(d.stderr()).toContain("reload failed, keeping the running plugins");
    expect((await swaks(d.port, "--to", "bob@example.org", "--quit-after", "RCPT")).out).toContain("<** 550 5.7.1 no mail for bob");
  });

  test("SIGTERM lets an open transaction finish, then answers 421 and exits", async () => {
    const { dir, maildir } = mailConfig(["rcpt_ok"]);
    const d = await daemon(dir);
    const c = await RawClient.connect(d.port);
    await c.reply();
    await c.command("EHLO c");
    await c.command("MAIL FROM:<a@example.net>");
    await c.command("RCPT TO:<b@example.org>");
    expect((await c.command("DATA")).code).toBe(354);
    const idle = await RawClient.connect(d.port);
    await idle.reply();
    d.proc.kill("SIGTERM");
    expect((await idle.reply()).code).toBe(421);
    c.write("Subject: during shutdown\r\n\r\nstill delivered\r\n.\r\n");
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(421);
    expect(await d.proc.exited).toBe(0);
    expect(newMessages(maildir).length).toBe(1);
  });

  test("SIGTERM while the plugins load is kept: the daemon starts, then stops as it would later (log, pid file, exit 0)", async () => {
    const plugins = mkdtempSync(join(tmpdir(), "qpslow-"));
    const loading = join(plugins, "loading");
    // A plugin whose init takes 800 ms and says when it began: the signal comes in the middle of it.
    writeFileSync(
      join(plugins, "slow_init.ts"),
      `import { writeFileSync } from "node:fs";
export const init = function () {
  writeFileSync(${JSON.stringify(loading)}, "");
  const until = Date.now() + 800;
  while (Date.now() < until);
};
export const hook_rcpt = () => undefined;
`,
    );
    const { dir } = mailConfig(["slow_init", "rcpt_ok"], {
      plugin_dirs: `${plugins}\n`,
      logging: `logging/file loglevel LOGINFO ${join(plugins, "qp.log")}\n`,
    });
    const pidFile = join(plugins, "qpsmtpd.pid");
    const port = await freePort();
    const proc = Bun.spawn([BINARY, "--config", dir, "-l", "127.0.0.1", "-p", String(port), "--workers", "1", "--pid-file", pidFile], {
      stdout: "ignore",
      stderr: "pipe",
    });
    for (let i = 0; i < 200 && !existsSync(loading); i++) await Bun.sleep(25);
    expect(existsSync(loading)).toBe(true);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const log = readFileSync(join(plugins, "qp.log"), "utf8");
    expect(log).toMatch(
      /\(server\) qpsmtpd [\d.]+ listening on 127\.0\.0\.1:\d+\n.*\(server\) SIGTERM: stopping;.*\n.*\(server\) stopped\n$/,
    );
    expect(existsSync(pidFile)).toBe(false);
  });

  test("spool files left by a dead process are removed at start-up; live ones stay", async () => {
    const spool = mkdtempSync(join(tmpdir(), "qpspool-"));
    const dead = join(spool, `1700000000000.999999.abcdef012345.spool`);
    const live = join(spool, `1700000000000.${process.pid}.abcdef012345.spool`);
    writeFileSync(dead, "Subject: half a message\n");
    writeFileSync(live, "Subject: someone else's\n");
    const { dir } = mailConfig(["rcpt_ok"], { spool_dir: `${spool}\n` });
    await daemon(dir);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  test("a plugin's stray asynchronous error is logged and the server goes on", async () => {
    const { dir } = mailConfig(["stray_error", "rcpt_ok"], { plugin_dirs: `${join(ROOT, "tests/fixtures/plugins")}\n` });
    const d = await daemon(dir);
    for (let i = 0; i < 2; i++) {
      const r = await swaks(d.port, "--to", "user@example.org");
      expect(r.code).toBe(0);
    }
    await Bun.sleep(100);
    expect(d.stderr()).toContain("stray timer error");
    expect(d.stderr()).toContain("stray rejection");
    expect(d.proc.exitCode).toBeNull();
  });

  test("-m limits connections per address", async () => {
    const { dir } = mailConfig(["rcpt_ok"]);
    const d = await daemon(dir, { args: ["-m", "1"] });
    await Bun.sleep(300); // let the start-up probe's connection close
    const a = await RawClient.connect(d.port);
    expect((await a.reply()).code).toBe(220);
    const b = await RawClient.connect(d.port);
    const r = await b.reply();
    expect(r.code).toBe(421);
    a.close();
  });

  test("a 250 means the message is in new/ even if the daemon is killed right after", async () => {
    const { dir, maildir } = mailConfig(["rcpt_ok"]);
    const d = await daemon(dir);
    const c = await RawClient.connect(d.port);
    await c.reply();
    await c.command("HELO c");
    await c.command("MAIL FROM:<a@example.net>");
    await c.command("RCPT TO:<b@example.org>");
    await c.command("DATA");
    c.write("Subject: durable\r\n\r\nx\r\n.\r\n");
    expect((await c.reply()).code).toBe(250);
    d.proc.kill("SIGKILL");
    await d.proc.exited;
    expect(newMessages(maildir).join()).toContain("Subject: durable");
  });

  test("-u drops root after binding, before the plugins load; --pid-file refuses a second start", async () => {
    // A plugin that says, when it loads, whose process it loads in.
    const pluginDir = mkdtempSync(join(tmpdir(), "qpuid-"));
    writeFileSync(
      join(pluginDir, "loaded_as.ts"),
      `import { LOGWARN, type Register } from "qpsmtpd";
export const register: Register = function () {
  this.log(LOGWARN, \`loaded as uid \${process.getuid?.()}\`);
};
`,
    );
    chmodSync(pluginDir, 0o755);
    const dir = configDir({
      rcpthosts: "example.org\n",
      plugin_dirs: `${pluginDir}\n`,
      plugins: "loaded_as\nrcpt_ok\nqueue/discard\n",
    });
    chmodSync(dir, 0o755); // the config must stay readable after the switch to nobody
    const pidDir = mkdtempSync(join(tmpdir(), "qppid-"));
    chmodSync(pidDir, 0o1777);
    const pidFile = join(pidDir, "qpsmtpd.pid");
    const asRoot = process.getuid?.() === 0;
    const d = await daemon(dir, { args: ["--pid-file", pidFile, ...(asRoot ? ["-u", "nobody"] : [])] });
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(d.proc.pid));
    if (asRoot) {
      const nobody = /^nobody:[^:]*:(\d+)/m.exec(readFileSync("/etc/passwd", "utf8"))![1];
      const uidNow = (): string => /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))![1]!;
      // The switch happens just after binding; no connection is served before it.
      const c = await RawClient.connect(d.port);
      expect((await c.reply()).code).toBe(220);
      c.close();
      const uid = uidNow();
      expect(uid).toBe(nobody!);
      // As qpsmtpd-forkserver: what plugins make at load is the user's, not root's.
      expect(d.stderr()).toContain(`loaded as uid ${nobody}`);
      expect((await swaks(d.port, "--to", "user@example.org")).out).toContain("250 2.0.0 Queued (discarded)");
    } else expect(d.stderr()).toContain(`loaded as uid ${process.getuid?.()}`);
    const second = await run([BINARY, "--config", dir, "-l", "127.0.0.1", "-p", String(await freePort()), "--pid-file", pidFile]);
    expect(second.code).toBe(1);
    expect(second.out).toContain("found an already running qpsmtpd");
    expect(await d.stop()).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  test("qpsmtpd check and qpsmtpd hooks", async () => {
    const good = mailConfig(["relay", "rcpt_ok"]).dir;
    const ok = await run([BINARY, "check", "--config", good]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("OK, 4 plugins loaded");
    const hooks = await run([BINARY, "hooks", "--config", good]);
    expect(hooks.out).toContain("rcpt: relay -> rcpt_ok\n");
    const bad = configDir({ plugins: "relay\nrcpt_okk\n", databytes: "lots\n" });
    const r = await run([BINARY, "check", "--config", bad]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${bad}/plugins:2: plugin rcpt_okk not found`);
    expect(r.out).toContain(`${bad}/databytes:1: databytes must be a whole number`);
    const version = await run([BINARY, "--version"]);
    expect(version.out).toMatch(/^qpsmtpd \d+\.\d+\.\d+\n$/);
  });

  test("the shipped config (qpsmtpd's sample set) passes check and delivers, with DNS on loopback", async () => {
    const ok = await run([BINARY, "check", "--config", join(ROOT, "config")]);
    expect(ok.code).toBe(0);
    const hooks = await run([BINARY, "hooks", "--config", join(ROOT, "config")]);
    expect(hooks.out).toContain("rcpt: relay -> dnsbl -> badrcptto -> rcpt_ok\n");
    expect(hooks.out).toContain(
      "data_post: helo -> sender_permitted_from -> headers -> bogus_bounce -> dkim -> dmarc -> virus/klez_filter -> naughty\n",
    );
    // A copy of config/ whose Maildir lives in a temp dir and whose DNS is a local server.
    const dns = await TestDnsServer.start({ "example.net": { MX: [[10, "mx.example.net"]] }, "mx.example.net": { A: ["192.0.2.25"] } });
    try {
      const dir = mkdtempSync(join(tmpdir(), "qpshipped-"));
      cpSync(join(ROOT, "config"), dir, { recursive: true });
      writeFileSync(join(dir, "dns_servers"), `127.0.0.1:${dns.port}\n`);
      rmSync(join(dir, "smtpd.yaml"));
      const d = await daemon(dir);
      const r = await swaks(
        d.port,
        "--to",
        "user@example.com",
        "--from",
        "someone@example.net",
        "--helo",
        "client.example.net",
        "--header",
        "Subject: sample set",
        "--header",
        `Date: ${new Date().toUTCString()}`,
      );
      expect(r.code).toBe(0);
      expect(r.out).toContain("250 2.0.0 Queued!");
      const msgs = newMessages(join(dir, "run", "Maildir"));
      expect(msgs.length).toBe(1);
      expect(msgs[0]).toContain("X-HELO: client.example.net");
      const relay = await swaks(d.port, "--to", "victim@evil.test", "--from", "someone@example.net", "--quit-after", "RCPT");
      expect(relay.out).toContain("<** 550 5.7.1 Relaying denied (#5.7.1)");
    } finally {
      await dns.stop();
    }
  });
});

describe("qpsmtpd check", () => {
  test("warns, without failing, about what the daemon runs anyway; plugins' own checks are reported", async () => {
    const plugins = mkdtempSync(join(tmpdir(), "qpchecks-"));
    writeFileSync(join(plugins, "probe.ts"), 'export const check = () => ["backend 127.0.0.1:1 does not answer"];\n');
    writeFileSync(join(plugins, "stuck.ts"), "export const check = () => new Promise(() => undefined);\n");
    writeFileSync(join(plugins, "broken.ts"), 'export const check = () => { throw new Error("no key file"); };\n');
    const dir = configDir({ plugins: "probe\nstuck timeout 1\nbroken\n", plugin_dirs: `${plugins}\n` });
    const r = await run([BINARY, "check", "--config", dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("warning: no rcpt plugin: every recipient will get 450");
    expect(r.out).toContain("warning: no queue plugin: every message will get 451");
    expect(r.out).toContain("warning: probe: backend 127.0.0.1:1 does not answer");
    expect(r.out).toContain("warning: stuck: check did not finish within 1s");
    expect(r.out).toContain("warning: broken: no key file");
    expect(r.out).toContain("OK, 3 plugins loaded");
  });
});

describe("a plugin author with only the binary", () => {
  test("new-plugin, types and test work in an empty directory; tsc checks the plugin against the contract", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpauthor-"));
    const bin = join(dir, "qpsmtpd");
    copyFileSync(BINARY, bin);
    chmodSync(bin, 0o755);
    const work = join(dir, "plugins.local");
    mkdirSync(work);
    const made = await run([bin, "new-plugin", "no_nobody", work]);
    expect(made.code).toBe(0);
    const types = await run([bin, "types", work]);
    expect(types.code).toBe(0);
    expect(existsSync(join(work, "tsconfig.json"))).toBe(true);
    expect(existsSync(join(work, "types/qpsmtpd/src/api/mod.d.ts"))).toBe(true);
    const tsc = join(ROOT, "node_modules/.bin/tsc");
    const checked = await run([tsc, "-p", work]);
    expect(checked).toEqual({ code: 0, out: "" });
    const tested = await run([bin, "test", join(work, "no_nobody_test.ts")]);
    expect(tested.out).toContain("ok   no_nobody refuses nobody and leaves the rest to rcpt_ok");
    expect(tested.out).toContain("1 passed, 0 failed");
    expect(tested.code).toBe(0);

    // A hook that breaks the contract fails the type check; a wrong expectation fails the test run.
    const plugin = join(work, "no_nobody.ts");
    writeFileSync(plugin, readFileSync(plugin, "utf8").replace('return [DENY, "no such user"];', 'return [550, "no such user"];'));
    const broken = await run([tsc, "-p", work]);
    expect(broken.code).not.toBe(0);
    expect(broken.out).toContain("no_nobody.ts");
    const spec = join(work, "no_nobody_test.ts");
    writeFileSync(spec, readFileSync(spec, "utf8").replace(".toBe(550)", ".toBe(251)"));
    const failing = await run([bin, "test", spec]);
    expect(failing.code).toBe(1);
    expect(failing.out).toContain("0 passed, 1 failed");
  }, 60_000); // four runs of the binary and one of tsc

  test("the documented example's test passes under qpsmtpd test", async () => {
    const r = await run([BINARY, "test", join(EXAMPLE_PLUGINS, "deny_bob_test.ts")]);
    expect(r.out).toContain("ok   deny_bob refuses bob and leaves everyone else to rcpt_ok");
    expect(r.code).toBe(0);
  });
});

describe("a plugin that never answers", () => {
  test("holds only its own connection for plugin_timeout; ten other sessions are served meanwhile", async () => {
    const plugins = mkdtempSync(join(tmpdir(), "qphang-"));
    writeFileSync(
      join(plugins, "hang.ts"),
      [
        'import { DECLINED, type Hooks } from "qpsmtpd";',
        'export const hook_rcpt: Hooks["rcpt"] = (_txn, rcpt) => rcpt.user === "hang" ? new Promise(() => undefined) : DECLINED;',
      ].join("\n"),
    );
    const { dir, maildir } = mailConfig(["hang", "rcpt_ok"], {
      plugin_dirs: `${plugins}\n`,
      plugin_timeout: "3\n",
      logging: "logging/warn LOGERROR\n",
    });
    const d = await daemon(dir, { args: ["-c", "30", "-m", "20"] });
    const hung = await RawClient.connect(d.port);
    await hung.reply();
    await hung.command("HELO hung.example");
    await hung.command("MAIL FROM:<a@example.net>");
    const started = Date.now();
    hung.write("RCPT TO:<hang@example.org>\r\n");
    const others = await Promise.all(
      Array.from({ length: 10 }, () => swaks(d.port, "--to", "user@example.org", "--from", "b@example.net")),
    );
    for (const r of others) expect(r.out).toContain("250 2.0.0 Queued!");
    expect(newMessages(maildir).length).toBe(10);
    expect(await hung.reply(100).then(() => "answered", () => "still waiting")).toBe("still waiting");
    const late = await hung.reply();
    // After the limit the hung plugin counts as DECLINED and rcpt_ok decides.
    expect(late.code).toBe(250);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    expect(d.stderr()).toContain("(rcpt) hang: plugin hang did not answer hook rcpt within 3s; going on as if it declined");
    hung.close();
  });
});

describe("built-ins are plugins like any other", () => {
  test("every built-in, copied into a plugin_dirs directory, loads from disk in the compiled binary", async () => {
    const copies = mkdtempSync(join(tmpdir(), "qpcopies-"));
    cpSync(join(ROOT, "plugins"), copies, { recursive: true });
    rmSync(join(copies, "mod.ts"));
    // Mark every copy, so the loaded set shows it came from disk and not from the binary.
    const names = Object.keys(BUILTINS);
    expect(names.length).toBeGreaterThanOrEqual(46);
    for (const n of names) {
      writeFileSync(
        join(copies, `${n}.ts`),
        `${readFileSync(join(copies, `${n}.ts`), "utf8")}\nexport const hook_post_fork = () => undefined;\n`,
      );
    }
    const dir = configDir({
      plugin_dirs: `${copies}\n`,
      "rcpt_map.txt": "known@example.org OK\n",
      "ssl/qpsmtpd-server.crt": readFileSync(join(TLS_DIR, "server.crt"), "utf8"),
      "ssl/qpsmtpd-server.key": readFileSync(join(TLS_DIR, "server.key"), "utf8"),
    });
    const args: Record<string, string> = {
      "queue/maildir": join(dir, "Maildir"),
      "queue/smtp-forward": "127.0.0.1 25",
      rcpt_map: `domain example.org file ${join(dir, "rcpt_map.txt")}`,
      "logging/file": join(dir, "qp.log"),
      "logging/apache": join(dir, "apache.log"),
      "ident/p0f": join(dir, "none.sock"),
      http_config: "http://127.0.0.1:1/",
      "auth/auth_ldap_bind": "ldap_base dc=example,dc=org",
      milter: "test 127.0.0.1:1",
    };
    writeFileSync(join(dir, "plugins"), names.map((n) => `${n} ${args[n] ?? ""}`.trim()).join("\n") + "\n");
    const r = await run([BINARY, "check", "--config", dir]);
    expect(r.out).toContain(`OK, ${names.length} plugins loaded`);
    const hooks = await run([BINARY, "hooks", "--config", dir]);
    // post-fork is registered by the marks only, so its chain lists every plugin: all came from disk.
    expect(hooks.out).toContain(`post-fork: ${names.join(" -> ")}\n`);
  });
});
