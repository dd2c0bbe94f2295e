/** logging/file: levels, file name templates, nosplit, tsformat and reopen. */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TestSession } from "../../../src/testing/harness.ts";
import { freePort, startDaemon } from "../../helpers/daemon.ts";
import { logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

/** The lines of a turn of the event loop reach the file at its end. */
const turnEnd = () => new Promise((r) => setImmediate(r));

describe("logging/file", () => {
  test("writes lines at or below the level, with time stamp, pid and connection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    const t = await logged(`logging/file loglevel LOGINFO ${dir}/qp-%Y%m%d.log`);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<x@evil.test>");
    await turnEnd();
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^qp-\d{8}\.log$/);
    const text = readFileSync(join(dir, file!), "utf8");
    expect(text).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d ${process.pid} test \\(rcpt\\) rcpt_ok: fail, evil\\.test is not a local domain$`,
        "m",
      ),
    );
    expect(text).not.toContain("LOGDEBUG");
    expect(text).not.toMatch(/\(rcpt\) rcpt_ok: DENY/);
  });

  test("%i gives one file per connection; nosplit keeps messages on one line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    const t = await logged(`logging/file loglevel 7 nosplit ${dir}/conn-%i.log`);
    t.qp.log(6, "two\nlines");
    await turnEnd();
    expect(readFileSync(join(dir, "conn-test.log"), "utf8")).toContain("two | lines\n");
  });

  test("a turn's lines go to the file together, in order, at the end of the turn", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    const t = await logged(`logging/file loglevel LOGINFO ${dir}/qp.log`);
    for (let i = 1; i <= 3; i++) t.qp.log(6, `line ${i}`);
    expect(existsSync(join(dir, "qp.log")) ? readFileSync(join(dir, "qp.log"), "utf8") : "").not.toContain("line 1");
    await turnEnd();
    expect(readFileSync(join(dir, "qp.log"), "utf8")).toMatch(/ line 1\n.* line 2\n.* line 3\n$/);
  });

  test("the daemon's last lines reach the file when it exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplog-"));
    writeFileSync(join(dir, "plugins"), "rcpt_ok\n");
    writeFileSync(join(dir, "logging"), `logging/file loglevel LOGINFO ${dir}/qp.log\n`);
    const port = await freePort();
    const main = resolve(import.meta.dirname, "../../../src/main.ts");
    const args = ["--config", dir, "-l", "127.0.0.1", "-p", String(port), "--workers", "1"];
    const d = await startDaemon("qpsmtpd", [process.execPath, main, ...args], [{ port }]);
    await d.stop();
    // "stopped" is logged just before process.exit: no later turn of the event loop writes it.
    expect(readFileSync(join(dir, "qp.log"), "utf8")).toMatch(/\(server\) SIGTERM: stopping;.*\n.*\(server\) stopped\n$/);
  });

  test("a missing path stops the load", async () => {
    expect(TestSession.start({ config: { logging: "logging/file loglevel 6" } })).rejects.toThrow("needs a file name");
  });
});

describe("logging/file arguments", () => {
  test("logging/file tsformat and reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qplogf-"));
    mkdirSync(join(dir, "logs"));
    writeFileSync(join(dir, "logs", "qp.log"), "old content\n");
    const t = await TestSession.start({ config: { logging: `logging/file loglevel 6 reopen tsformat [%s] ${dir}/logs/qp.log` } });
    t.qp.log(6, "hello");
    await turnEnd();
    const text = readFileSync(join(dir, "logs", "qp.log"), "utf8");
    expect(text).not.toContain("old content");
    expect(text).toMatch(/^\[\d{10}\] \d+ test hello\n$/);
  });
});

describe("logging/file arguments", () => {
  test("a second path is refused, and a level where the path goes is named as a level", async () => {
    await expectUnknownArgument("logging/file /tmp/a.log /tmp/b.log", "/tmp/b.log");
    await expect(TestSession.start({ plugins: ["logging/file LOGDEBUG"] })).rejects.toThrow(
      'logging/file: "LOGDEBUG" is a level, not a file: write loglevel LOGDEBUG',
    );
  });
});
