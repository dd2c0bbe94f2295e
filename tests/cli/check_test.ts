/** `qpsmtpd check`'s printing (src/cli/check.ts): the report's order, prefixes and exit code. */
import { describe, expect, test } from "bun:test";
import { printCheck } from "../../src/cli/check.ts";

function print(r: Parameters<typeof printCheck>[0]) {
  let out = "";
  let err = "";
  const code = printCheck(r, "/etc/qpsmtpd", (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

describe("qpsmtpd check output", () => {
  test("lines to stdout, warnings to stderr, OK with the counts; exit 0", () => {
    const r = print({
      lines: ["/etc/qpsmtpd/plugins:1: check_relay -> alias of relay"],
      problems: [],
      warnings: ["no queue plugin"],
      plugins: 1,
    });
    expect(r).toEqual({
      code: 0,
      out: "/etc/qpsmtpd/plugins:1: check_relay -> alias of relay\nqpsmtpd check: OK, 1 plugins loaded from /etc/qpsmtpd, 1 warning(s)\n",
      err: "qpsmtpd check: warning: no queue plugin\n",
    });
  });

  test("a problem makes it exit 1, after every warning and problem", () => {
    const r = print({ lines: [], problems: ["plugins:2: plugin x not found", "databytes:1: bad"], warnings: ["w"], plugins: 0 });
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toBe(
      "qpsmtpd check: warning: w\nqpsmtpd check: plugins:2: plugin x not found\nqpsmtpd check: databytes:1: bad\n" +
        "qpsmtpd check: 2 problem(s) in /etc/qpsmtpd; fix them before starting the daemon\n",
    );
  });
});
