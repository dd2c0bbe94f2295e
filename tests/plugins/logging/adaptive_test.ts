/** logging/adaptive: accepted messages log at one level, refusals at another. */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { captureStderr, logged } from "../../helpers/sessions.ts";
import { TestSession } from "../../../src/testing/harness.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("logging/adaptive", () => {
  test("an accepted message logs at the accept level; a refusal at the reject level, marked", async () => {
    const accepted = await captureStderr(async () => {
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
    const refused = await captureStderr(async () => {
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

describe("logging/adaptive: unknown arguments", () => {
  test("a misspelt key, or a level that is not one, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("logging/adaptive acept LOGINFO", "acept");
    await expect(TestSession.start({ plugins: ["logging/adaptive reject LOGINF0"] })).rejects.toThrow(
      'logging/adaptive: reject "LOGINF0" is not a log level',
    );
  });
});
