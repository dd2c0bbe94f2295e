/** rcpt_map: a map file of addresses and codes for one domain. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("rcpt_map", () => {
  test("known addresses get their code, unknown ones the default; other domains pass by", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpmap-"));
    const file = join(dir, "map");
    writeFileSync(file, "# users\nalice@example.org OK\nbob DENYSOFT mailbox full\nbroken line\n");
    const t = await TestSession.start({ plugins: [`rcpt_map domain example.org file ${file} default DENY=No_such_user_here`] });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<Alice@example.org>")).code).toBe(250);
    expect(await t.command("RCPT TO:<bob@example.org>")).toMatchObject({ code: 450, text: "mailbox full" });
    expect(await t.command("RCPT TO:<carol@example.org>")).toMatchObject({ code: 550, text: "No such user here" });
    expect((await t.command("RCPT TO:<carol@other.example>")).text).toBe("No plugin decided if relaying is allowed");
    writeFileSync(file, "carol OK\n");
    const { utimesSync } = await import("node:fs");
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect((await t.command("RCPT TO:<carol@example.org>")).code).toBe(250);
  });
});

describe("rcpt_map: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "qpmap-")), "map");
    writeFileSync(file, "a@example.org OK\n");
    await expectUnknownArgument(`rcpt_map domain example.org file ${file} defualt DENY=No`, "defualt");
  });
});
