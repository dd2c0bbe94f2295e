/** logging/json: one JSON object a line, to a file or stderr; what each field holds; its arguments. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, type Hooks } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { captureStderr } from "../../helpers/sessions.ts";

const parse = (text: string): Array<Record<string, unknown>> => text.trim().split("\n").map((l) => JSON.parse(l));

describe("logging/json", () => {
  test("writes one object a line with time, level, host, pid, connection, transaction, client_ip, hook, plugin, message", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "qpjson-")), "logs", "qpsmtpd.json");
    const t = await TestSession.start({
      plugins: ["rcpt_ok"],
      config: { logging: `logging/json loglevel LOGINFO ${file}`, rcpthosts: "example.org", me: "mx1.example.org" },
      remoteIp: "192.0.2.44",
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<x@evil.test>");
    t.qp.log(7, "debug detail");
    t.qp.log(3, "first\nsecond");
    const lines = parse(readFileSync(file, "utf8"));
    const rcpt = lines.find((l) => l["plugin"] === "rcpt_ok")!;
    expect(Object.keys(rcpt)).toEqual([
      "time",
      "level",
      "host",
      "pid",
      "connection",
      "transaction",
      "client_ip",
      "hook",
      "plugin",
      "message",
    ]);
    expect(rcpt).toMatchObject({
      level: "info",
      host: "mx1.example.org",
      pid: process.pid,
      connection: "test",
      transaction: "test.1",
      client_ip: "192.0.2.44",
      hook: "rcpt",
      message: "fail, evil.test is not a local domain",
    });
    expect(new Date(rcpt["time"] as string).toISOString()).toBe(rcpt["time"] as string);
    expect(lines.find((l) => l["message"] === "first\nsecond")).toMatchObject({ level: "error", transaction: "test.1" });
    expect(lines.some((l) => l["message"] === "debug detail")).toBe(false);
  });

  test("to stderr without a path; the server's own lines have no connection; its own lines are not written", async () => {
    const err = await captureStderr(async () => {
      const srv: Hooks["helo"] = function () {
        this.server.log(4, "from the server");
        return DECLINED;
      };
      const t = await TestSession.start({
        plugins: ["srv"],
        modules: { srv: { hook_helo: srv } },
        config: { logging: "logging/json loglevel LOGDEBUG" },
        remoteIp: "2001:db8::7",
      });
      await t.command("HELO c");
      t.qp.log(4, "from the session");
    });
    const lines = parse(err);
    expect(lines.find((l) => l["message"] === "from the session")).toMatchObject({
      level: "warn",
      client_ip: "2001:db8::7",
      transaction: "test.0",
    });
    const server = lines.find((l) => l["message"] === "from the server")!;
    expect(server["connection"]).toBeUndefined();
    expect(server["client_ip"]).toBeUndefined();
    expect(lines.some((l) => l["plugin"] === "logging::json")).toBe(false);
  });

  test("a bad level, a second path or a file that cannot be opened stops start-up, naming it", async () => {
    await expect(TestSession.start({ config: { logging: "logging/json loglevel loud" } })).rejects.toThrow(
      'logging/json: "loud" is not a log level',
    );
    await expect(TestSession.start({ config: { logging: "logging/json /tmp/a.json format" } })).rejects.toThrow(
      'logging/json: unknown argument "format"',
    );
    await expect(TestSession.start({ config: { logging: "logging/json LOGINFO" } })).rejects.toThrow(
      'logging/json: "LOGINFO" is a level, not a file: write loglevel LOGINFO',
    );
    await expect(TestSession.start({ config: { logging: "logging/json /dev/null/x.json" } })).rejects.toThrow(
      "logging/json: cannot open /dev/null/x.json",
    );
  });
});
