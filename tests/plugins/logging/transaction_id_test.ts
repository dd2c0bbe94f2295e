/** logging/transaction_id: stderr lines led by CONNECTION.N, N counting the connection's transactions. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";
import { transactionId } from "../../../plugins/logging/transaction_id.ts";
import { captureStderr, logged } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("logging/transaction_id", () => {
  test("each MAIL starts the next transaction number; lines carry CONNECTION.N", async () => {
    const ids: string[] = [];
    const err = await captureStderr(async () => {
      const t = await TestSession.start({
        plugins: ["rcpt_ok"],
        config: { logging: "logging/transaction_id LOGINFO", rcpthosts: "example.org" },
      });
      await t.command("HELO c");
      await t.command("MAIL FROM:<a@example.net>");
      ids.push(transactionId(t.connection.id));
      await t.command("RCPT TO:<x@evil.test>");
      await t.command("RSET");
      await t.command("MAIL FROM:<b@example.net>");
      ids.push(transactionId(t.connection.id));
      await t.command("RCPT TO:<y@evil.test>");
    });
    // TestSession ids are all "test", so the numbers go on from earlier tests: compare them.
    const [first, second] = ids.map((id) => Number(id.split(".")[1]));
    expect(second).toBe(first! + 1);
    expect(err).toContain(`test.${first} rcpt_ok plugin: fail, evil.test is not a local domain\n`);
    expect(err).toContain(`test.${second} rcpt_ok plugin: fail, evil.test is not a local domain\n`);
  });

  test("two instances count a transaction once; the server's own lines carry ???", async () => {
    const err = await captureStderr(async () => {
      const t = await TestSession.start({ config: { logging: ["logging/transaction_id:1 LOGINFO", "logging/transaction_id:2 LOGEMERG"] } });
      await t.command("HELO c");
      const before = Number(transactionId("test").split(".")[1]);
      await t.command("MAIL FROM:<a@example.net>");
      expect(transactionId("test")).toBe(`test.${before + 1}`);
    });
    expect(transactionId("")).toBe("???");
    expect(err).not.toContain("LOGDEBUG");
  });

  test("a bad level stops start-up", async () => {
    expect(TestSession.start({ config: { logging: "logging/transaction_id 12" } })).rejects.toThrow('"12" is not a log level');
  });
});

describe("logging/transaction_id: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word; `loglevel L` is the level", async () => {
    await expectUnknownArgument("logging/transaction_id levl LOGINFO", "levl");
    const err = await captureStderr(async () => {
      const t = await logged("logging/transaction_id loglevel LOGINFO");
      t.qp.log(6, "an info line");
    });
    expect(err).toContain("an info line");
  });
});
