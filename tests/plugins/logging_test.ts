/** logging/file, logging/syslog (to a UDP listener on loopback), logging/adaptive. */
import { describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

async function logged(logging: string, plugins: string[] = ["rcpt_ok"]): Promise<TestSession> {
  const t = await TestSession.start({ plugins, config: { logging, rcpthosts: "example.org" } });
  return t;
}

describe("logging/file", () => {
  test("writes lines at or below the level, with time stamp, pid and connection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    const t = await logged(`logging/file loglevel LOGINFO ${dir}/qp-%Y%m%d.log`);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<x@evil.test>");
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^qp-\d{8}\.log$/);
    const text = readFileSync(join(dir, file!), "utf8");
    expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d ${process.pid} test \\(rcpt\\) rcpt_ok: fail, evil\\.test is not a local domain$`, "m"));
    expect(text).not.toContain("LOGDEBUG");
    expect(text).not.toMatch(/\(rcpt\) rcpt_ok: DENY/);
  });

  test("%i gives one file per connection; nosplit keeps messages on one line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    const t = await logged(`logging/file loglevel 7 nosplit ${dir}/conn-%i.log`);
    t.qp.log(6, "two\nlines");
    expect(readFileSync(join(dir, "conn-test.log"), "utf8")).toContain("two | lines\n");
  });

  test("a missing path stops the load", async () => {
    expect(TestSession.start({ config: { logging: "logging/file loglevel 6" } })).rejects.toThrow("needs a file name");
  });
});

describe("logging/syslog", () => {
  test("sends RFC 3164 datagrams with facility mail and the line's severity", async () => {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const got: string[] = [];
    sock.on("message", (m) => got.push(m.toString()));
    try {
      const t = await logged(`logging/syslog loglevel LOGINFO ident qptest logsock udp:127.0.0.1:${sock.address().port}`);
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
      await Bun.sleep(100);
      // facility mail (2) * 8 + info (6) = 22
      expect(got.some((l) => /^<22>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ qptest\[\d+\]: test \(rcpt\) rcpt_ok: fail, evil\.test is not a local domain$/.test(l))).toBe(true);
      expect(got.some((l) => l.startsWith("<23>"))).toBe(false);
    } finally {
      sock.close();
    }
  });
  test("bad arguments stop the load", async () => {
    expect(TestSession.start({ config: { logging: "logging/syslog facility LOG_NOPE" } })).rejects.toThrow("unknown facility");
    expect(TestSession.start({ config: { logging: "logging/syslog logsock /dev/log" } })).rejects.toThrow("logsock must be udp");
  });
});

describe("logging/adaptive", () => {
  async function capture(fn: () => Promise<void>): Promise<string> {
    let out = "";
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => ((out += String(s)), true)) as typeof process.stderr.write;
    try {
      await fn();
    } finally {
      process.stderr.write = orig;
    }
    return out;
  }

  test("an accepted message logs at the accept level; a refusal at the reject level, marked", async () => {
    const accepted = await capture(async () => {
      const t = await logged("logging/adaptive accept LOGWARN reject LOGINFO prefix !", ["rcpt_ok"]);
      t.mockHook("queue", () => OK);
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@example.org>");
      await t.command("DATA");
      await t.data("Subject: x\n\ny\n");
      t.qp.log(6, "an info line after the message");
      await t.command("QUIT");
      await t.done;
    });
    expect(accepted).not.toContain("rcpt_ok");
    const refused = await capture(async () => {
      const t = await logged("logging/adaptive accept LOGWARN reject LOGINFO prefix !", ["rcpt_ok"]);
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
      await t.command("QUIT");
      await t.done;
    });
    expect(refused).toMatch(/^!\d+ test \(rcpt\) rcpt_ok: fail, evil\.test is not a local domain$/m);
  });
});

describe("content_log", () => {
  test("archives messages in mbox form when enabled", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpcl-"));
    const t = await TestSession.start({ plugins: ["content_log"], config: { content_log_enabled: "1", content_log_file: `${dir}/%Y/archive` } });
    t.mockHook("rcpt", () => OK);
    t.mockHook("queue", () => OK);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    await t.data("Subject: archived\n\nFrom the start\nbody\n");
    const file = join(dir, String(new Date().getFullYear()), "archive");
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^From a@example\.net \w{3}, /);
    expect(text).toContain("Subject: archived\n\n>From the start\nbody\n\n");
    const off = await TestSession.start({ plugins: ["content_log"], config: { content_log_file: `${dir}/off` } });
    off.mockHook("rcpt", () => OK);
    off.mockHook("queue", () => OK);
    await off.command("HELO c");
    await off.command("MAIL FROM:<a@example.net>");
    await off.command("RCPT TO:<b@example.org>");
    await off.command("DATA");
    await off.data("Subject: x\n\ny\n");
    expect(existsSync(join(dir, "off"))).toBe(false);
  });
});
