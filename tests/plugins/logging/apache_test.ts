/** logging/apache: Apache error-log lines in a file, levels, and a file that cannot be opened. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apacheTime } from "../../../plugins/logging/apache.ts";
import { TestSession } from "../../../src/testing/harness.ts";
import { logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("logging/apache", () => {
  test("writes `[time] [qpsmtpd:level] [pid P] P CONNECTION PLUGIN plugin: message` at or below its level", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "qpapache-")), "logs", "qpsmtpd.log");
    const t = await logged(`logging/apache loglevel LOGINFO ${file}`);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<x@evil.test>");
    t.qp.log(7, "debug detail");
    t.qp.log(3, "first\nsecond");
    const text = readFileSync(file, "utf8");
    const pid = process.pid;
    const stamp = String.raw`\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\]`;
    expect(text).toMatch(
      new RegExp(`^${stamp} \\[qpsmtpd:info\\] \\[pid ${pid}\\] ${pid} test rcpt_ok plugin: fail, evil\\.test is not a local domain$`, "m"),
    );
    expect(text).toMatch(
      new RegExp(
        `^${stamp} \\[qpsmtpd:error\\] \\[pid ${pid}\\] ${pid} test first\\n${stamp} \\[qpsmtpd:error\\] \\[pid ${pid}\\] ${pid} test second$`,
        "m",
      ),
    );
    expect(text).not.toContain("debug detail");
  });

  test("Apache's time stamp", () => {
    expect(apacheTime(new Date(2000, 9, 11, 14, 32, 52, 123))).toBe("Wed Oct 11 14:32:52.123000 2000");
  });

  test("a file that cannot be opened stops start-up, naming it", async () => {
    expect(TestSession.start({ config: { logging: "logging/apache /dev/null/qpsmtpd.log" } })).rejects.toThrow(
      "logging/apache: cannot open /dev/null/qpsmtpd.log",
    );
  });
});

describe("logging/apache: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word, not the path", async () => {
    await expectUnknownArgument("logging/apache logleve LOGINFO /tmp/qpsmtpd-apache.log", "logleve");
    await expectUnknownArgument("logging/apache /tmp/qpsmtpd-apache.log /tmp/other.log", "/tmp/other.log");
  });
});
