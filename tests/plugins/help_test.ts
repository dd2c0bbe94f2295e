/** help: HELP topics from files, COMMAND FILE pairs, not_implemented. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("help", () => {
  test("help serves files per topic, and not_implemented", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qphelp-"));
    mkdirSync(join(dir, "help"));
    writeFileSync(join(dir, "help", "default"), "Commands: HELO MAIL RCPT DATA\nAsk postmaster\n");
    writeFileSync(join(dir, "help", "mail"), "MAIL FROM:<address>\n");
    const t = await TestSession.start({ plugins: ["help help_dir help"], configDirs: [dir] });
    expect((await t.command("HELP")).lines).toEqual(["Commands: HELO MAIL RCPT DATA", "Ask postmaster"]);
    expect((await t.command("HELP MAIL")).text).toBe("MAIL FROM:<address>");
    expect((await t.command("HELP ../../etc/passwd")).code).toBe(504);
    expect((await t.command("HELP nothing")).code).toBe(504);
    const n = await TestSession.start({ plugins: ["help not_implemented 1"] });
    expect((await n.command("HELP")).code).toBe(502);
  });
});

describe("help arguments", () => {
  test("help COMMAND FILE pairs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qphelp2-"));
    writeFileSync(join(dir, "rcpt.txt"), "RCPT TO:<address>\n");
    const t = await TestSession.start({ plugins: ["help RCPT rcpt.txt"], configDirs: [dir] });
    expect((await t.command("HELP rcpt")).text).toBe("RCPT TO:<address>");
    expect((await t.command("HELP")).code).toBe(214);
  });
});

describe("help: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word; so does a command without its file", async () => {
    await expectUnknownArgument("help help_dri /usr/share/qpsmtpd/help", "help_dri");
    await expectUnknownArgument("help not_implmented 1", "not_implmented");
    await expect(TestSession.start({ plugins: ["help RCPT rcpt.txt MAIL"] })).rejects.toThrow(
      '(override plugins):1: plugin help failed to load: help: "MAIL" needs a value',
    );
  });
});
