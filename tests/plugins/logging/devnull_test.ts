/** logging/devnull: every log line is discarded. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../../src/testing/harness.ts";
import { captureStderr } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

/** A refused recipient: rcpt_ok logs `fail, evil.test is not a local domain` at LOGINFO. */
async function refuse(t: TestSession): Promise<void> {
  await t.command("HELO c");
  await t.command("MAIL FROM:<a@example.net>");
  expect((await t.command("RCPT TO:<x@evil.test>")).code).toBe(550);
}

describe("logging/devnull", () => {
  test("nothing reaches stderr, where the lines go without a logging plugin", async () => {
    // Without a logging plugin, lines at or below the log level are written to stderr.
    const plain = await TestSession.start({ plugins: ["rcpt_ok"], config: { rcpthosts: "example.org" }, logLevel: 7 });
    expect(await captureStderr(() => refuse(plain))).toContain("rcpt_ok: fail, evil.test is not a local domain");

    const t = await TestSession.start({
      plugins: ["rcpt_ok"],
      config: { logging: "logging/devnull", rcpthosts: "example.org" },
      logLevel: 7,
    });
    const out = await captureStderr(async () => {
      await refuse(t);
      t.qp.log(1, "an alert line");
    });
    expect(out).toBe("");
    // The lines were logged; devnull is where they went.
    expect(t.logs.some((l) => l.plugin === "rcpt_ok" && l.message === "fail, evil.test is not a local domain")).toBe(true);
  });

  test("other logging plugins still get every line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpdevnull-"));
    const t = await TestSession.start({
      plugins: ["rcpt_ok"],
      config: { logging: ["logging/devnull", `logging/file loglevel LOGINFO ${dir}/qp.log`], rcpthosts: "example.org" },
    });
    await refuse(t);
    await new Promise((r) => setImmediate(r)); // logging/file writes a turn's lines at its end
    expect(readFileSync(join(dir, "qp.log"), "utf8")).toContain("rcpt_ok: fail, evil.test is not a local domain");
  });
});

describe("logging/devnull arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("logging/devnull loglvl 7", "loglvl");
  });
});
