/** quit_fortune: the fortune as the QUIT reply of HELO sessions. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED } from "qpsmtpd";
import { hook_quit } from "../../plugins/quit_fortune.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("quit_fortune", () => {
  test("quit_fortune answers HELO-only sessions with the fortune", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpfortune-"));
    const prog = join(dir, "fortune");
    writeFileSync(prog, "#!/bin/sh\necho 'A fortune line'\necho 'and a second'\n");
    chmodSync(prog, 0o755);
    const t = await TestSession.start({ plugins: [`quit_fortune ${prog}`] });
    await t.command("HELO c");
    expect((await t.command("QUIT")).lines).toEqual(["A fortune line", "and a second"]);
    expect(t.closed).toBe(true);
    const e = await TestSession.start({ plugins: [`quit_fortune ${prog}`] });
    await e.command("EHLO c");
    expect((await e.command("QUIT")).text).toContain("closing connection");
  });
  test("where there is no fortune to tell (EHLO, or no program), the answer is DECLINED at once, not a promise", () => {
    const call = (hello: string, prog: string) => hook_quit.call({ connection: { hello }, data: { prog } } as never, {} as never);
    expect(call("ehlo", "/bin/sh")).toBe(DECLINED);
    expect(call("helo", "/nonexistent/fortune")).toBe(DECLINED);
    expect(call("helo", "/bin/true")).toBeInstanceOf(Promise);
  });
});

describe("quit_fortune arguments", () => {
  test("a word that is not a program path, or a second word, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("quit_fortune fortune", "fortune");
    await expectUnknownArgument("quit_fortune /usr/games/fortune -s", "-s");
  });
});
