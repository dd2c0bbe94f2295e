/** logging/connection_id: stderr lines led by the connection id, in qpsmtpd's format. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";
import { captureStderr, logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("logging/connection_id", () => {
  test("writes `ID PLUGIN plugin: message` at or below its level", async () => {
    const err = await captureStderr(async () => {
      const t = await logged("logging/connection_id LOGINFO");
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      await t.command("RCPT TO:<x@evil.test>");
      t.qp.log(7, "too detailed to show");
    });
    expect(err).toContain("test rcpt_ok plugin: fail, evil.test is not a local domain\n");
    expect(err).not.toContain("too detailed to show");
    expect(err).not.toContain(String(process.pid)); // the connection id replaces the pid
  });

  test("lines without a plugin name the hook or nothing; the default level is LOGWARN", async () => {
    const err = await captureStderr(async () => {
      const t = await logged("logging/connection_id");
      t.qp.log(4, "a warning");
      t.qp.log(6, "only info");
    });
    expect(err).toMatch(/^test a warning$/m);
    expect(err).not.toContain("only info");
  });

  test("a bad level stops start-up", async () => {
    expect(TestSession.start({ config: { logging: "logging/connection_id loud" } })).rejects.toThrow('"loud" is not a log level');
  });
});

describe("logging/connection_id: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word; `loglevel L` is the level", async () => {
    await expectUnknownArgument("logging/connection_id levl LOGINFO", "levl");
    const err = await captureStderr(async () => {
      const t = await logged("logging/connection_id loglevel LOGINFO");
      t.qp.log(6, "an info line");
    });
    expect(err).toContain("an info line");
  });
});
