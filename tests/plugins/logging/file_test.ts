/** logging/file: levels, file name templates, nosplit, tsformat and reopen. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../../src/testing/harness.ts";
import { logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

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
    expect(readFileSync(join(dir, "conn-test.log"), "utf8")).toContain("two | lines\n");
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
