/** logging/syslog, to a UDP listener on loopback. */
import { describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { TestSession } from "../../../src/testing/harness.ts";
import { logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

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
      expect(
        got.some((l) =>
          /^<22>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ qptest\[\d+\]: test \(rcpt\) rcpt_ok: fail, evil\.test is not a local domain$/.test(l)
        ),
      ).toBe(true);
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

describe("logging/syslog: unknown arguments", () => {
  test("qpsmtpd's priority LOG_NOTICE (a syslog name) fixes every line's severity", async () => {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const got: string[] = [];
    sock.on("message", (m) => got.push(m.toString()));
    try {
      const t = await logged(`logging/syslog loglevel LOGINFO priority LOG_NOTICE logsock udp:127.0.0.1:${sock.address().port}`);
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
      for (let i = 0; i < 200 && !got.some((l) => l.includes("evil.test")); i++) await new Promise((r) => setTimeout(r, 5));
      // facility mail (2) * 8 + notice (5) = 21, though rcpt_ok logs at LOGINFO
      expect(got.filter((l) => l.includes("evil.test is not a local domain")).map((l) => l.slice(0, 4))).toEqual(["<21>"]);
    } finally {
      sock.close();
    }
  });
  test("a misspelt key, or a priority that is none, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("logging/syslog facilty LOG_MAIL", "facilty");
    await expect(TestSession.start({ plugins: ["logging/syslog priority LOG_LOUD"] })).rejects.toThrow(
      'logging/syslog: priority "LOG_LOUD" is not a syslog severity',
    );
  });
});
