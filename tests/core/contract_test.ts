/**
 * Every hook × every return code → qpsmtpd's reply and side effect (reference §2.1), through a
 * real session with mocked hooks. "none" means no plugin registered for the hook.
 */
import { describe, expect, test } from "bun:test";
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, OK, type ReturnCode } from "qpsmtpd";
import type { HookName } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

type CodeName = "OK" | "DENY" | "DENYSOFT" | "DENY_DISCONNECT" | "DENYSOFT_DISCONNECT" | "DECLINED" | "DONE" | "none";
const CODES: Record<Exclude<CodeName, "none">, ReturnCode> = { OK, DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT, DECLINED, DONE };
/** [expected reply code or null for no reply, disconnected] */
type Expect = [number | null, boolean];
type Row = Record<CodeName, Expect>;

const ok250: Expect = [250, false];
const TABLE: Partial<Record<HookName, Row>> = {
  connect: { OK: [220, false], DECLINED: [220, false], none: [220, false], DENY: [550, true], DENYSOFT: [450, true], DENY_DISCONNECT: [550, true], DENYSOFT_DISCONNECT: [450, true], DONE: [null, false] },
  helo: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [550, false], DENYSOFT: [450, false], DENY_DISCONNECT: [550, true], DENYSOFT_DISCONNECT: [450, true], DONE: [null, false] },
  ehlo: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [550, false], DENYSOFT: [450, false], DENY_DISCONNECT: [550, true], DENYSOFT_DISCONNECT: [450, true], DONE: [null, false] },
  mail: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [550, false], DENYSOFT: [450, false], DENY_DISCONNECT: [550, true], DENYSOFT_DISCONNECT: [421, true], DONE: [null, false] },
  rcpt: { OK: ok250, DECLINED: [450, false], none: [450, false], DENY: [550, false], DENYSOFT: [450, false], DENY_DISCONNECT: [550, true], DENYSOFT_DISCONNECT: [421, true], DONE: [null, false] },
  data: { OK: [354, false], DECLINED: [354, false], none: [354, false], DENY: [554, false], DENYSOFT: [451, false], DENY_DISCONNECT: [554, true], DENYSOFT_DISCONNECT: [451, true], DONE: [null, false] },
  data_headers_end: { OK: ok250, DECLINED: ok250, none: ok250, DENY: ok250, DENYSOFT: ok250, DENY_DISCONNECT: [554, true], DENYSOFT_DISCONNECT: [421, true], DONE: ok250 },
  data_post: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [552, false], DENYSOFT: [452, false], DENY_DISCONNECT: [552, true], DENYSOFT_DISCONNECT: [452, true], DONE: [null, false] },
  queue_pre: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [451, false], DENYSOFT: [451, false], DENY_DISCONNECT: [451, false], DENYSOFT_DISCONNECT: [451, false], DONE: [null, false] },
  queue: { OK: ok250, DECLINED: [451, false], none: [451, false], DENY: [552, false], DENYSOFT: [452, false], DENY_DISCONNECT: [451, false], DENYSOFT_DISCONNECT: [451, false], DONE: [null, false] },
  vrfy: { OK: [250, false], DECLINED: [252, false], none: [252, false], DENY: [554, false], DENYSOFT: [252, false], DENY_DISCONNECT: [252, false], DENYSOFT_DISCONNECT: [252, false], DONE: [null, false] },
  noop: { OK: ok250, DECLINED: ok250, none: ok250, DENY: [500, false], DENYSOFT: ok250, DENY_DISCONNECT: [500, true], DENYSOFT_DISCONNECT: ok250, DONE: [null, false] },
  help: { OK: [214, false], DECLINED: [214, false], none: [214, false], DENY: [500, false], DENYSOFT: [214, false], DENY_DISCONNECT: [214, false], DENYSOFT_DISCONNECT: [214, false], DONE: [null, false] },
  quit: { OK: [221, true], DECLINED: [221, true], none: [221, true], DENY: [221, true], DENYSOFT: [221, true], DENY_DISCONNECT: [221, true], DENYSOFT_DISCONNECT: [221, true], DONE: [null, true] },
  unrecognized_command: { OK: [500, false], DECLINED: [500, false], none: [500, false], DENY: [500, false], DENYSOFT: [500, false], DENY_DISCONNECT: [521, true], DENYSOFT_DISCONNECT: [500, false], DONE: [null, false] },
};

const MESSAGE = "Subject: contract\n\nbody\n";

/** Runs the session up to `hook`'s stage and returns the replies that stage's input caused. */
async function drive(hook: HookName, code: CodeName): Promise<{ codes: number[]; closed: boolean }> {
  const t = await TestSession.start();
  let greeting: number[] = [];
  if (hook === "connect") {
    // Re-start with the mock in place before the greeting.
    const c = await TestSession.start({ modules: { m: code === "none" ? {} : { hook_connect: () => CODES[code] } }, plugins: ["m"] });
    greeting = c.replies.map((r) => r.code);
    return { codes: greeting, closed: c.closed };
  }
  if (code !== "none") t.mockHook(hook, () => CODES[code]);
  if (hook !== "rcpt") t.mockHook("rcpt", () => OK);
  if (hook !== "queue") t.mockHook("queue", () => OK);
  const run = async (...lines: string[]): Promise<number[]> => {
    const out: number[] = [];
    for (const l of lines) out.push(...(await t.send(`${l}\r\n`)).map((r) => r.code));
    return out;
  };
  let codes: number[];
  switch (hook) {
    case "helo":
      codes = await run("HELO client.example");
      break;
    case "ehlo":
      codes = await run("EHLO client.example");
      break;
    case "mail":
      await run("EHLO c");
      codes = await run("MAIL FROM:<a@example.net>");
      break;
    case "rcpt":
      await run("EHLO c", "MAIL FROM:<a@example.net>");
      codes = await run("RCPT TO:<b@example.org>");
      break;
    case "data":
      await run("EHLO c", "MAIL FROM:<a@example.net>", "RCPT TO:<b@example.org>");
      codes = await run("DATA");
      break;
    case "data_headers_end":
    case "data_post":
    case "queue_pre":
    case "queue":
      await run("EHLO c", "MAIL FROM:<a@example.net>", "RCPT TO:<b@example.org>", "DATA");
      codes = (await t.send(`${MESSAGE.replace(/\n/g, "\r\n")}.\r\n`)).map((r) => r.code);
      break;
    case "vrfy":
      codes = await run("VRFY someone");
      break;
    case "noop":
      codes = await run("NOOP");
      break;
    case "help":
      codes = await run("HELP");
      break;
    case "quit":
      codes = await run("QUIT");
      break;
    case "unrecognized_command":
      codes = await run("FROB x");
      break;
    default:
      throw new Error(`no driver for ${hook}`);
  }
  return { codes, closed: t.closed };
}

describe("hook × return code → reply", () => {
  for (const [hook, row] of Object.entries(TABLE) as Array<[HookName, Row]>) {
    for (const [code, [reply, closed]] of Object.entries(row) as Array<[CodeName, Expect]>) {
      test(`${hook} ${code} → ${reply ?? "no reply"}${closed ? " + disconnect" : ""}`, async () => {
        const r = await drive(hook, code);
        if (reply === null) expect(r.codes.filter((c) => c !== 221)).toEqual([]);
        else expect(r.codes[0]).toBe(reply);
        expect(r.closed).toBe(closed);
      });
    }
  }
});

describe("hook runner", () => {
  test("a plugin that throws is logged and skipped; the next one decides", async () => {
    const t = await TestSession.start();
    t.mockHook("rcpt", () => OK);
    t.mockHook("rcpt", () => {
      throw new Error("boom");
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
  });

  test("an invalid return value is skipped like DECLINED", async () => {
    const t = await TestSession.start();
    t.mockHook("rcpt", () => OK);
    t.mockHook("rcpt", (() => 12345) as never);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
  });

  test("message lines replace the default text and split on newlines", async () => {
    const t = await TestSession.start();
    t.mockHook("rcpt", () => [DENY, "first line\nsecond line"]);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    const r = await t.command("RCPT TO:<b@example.org>");
    expect(r.code).toBe(550);
    expect(r.lines).toEqual(["first line", "second line"]);
  });

  test("async hooks are awaited", async () => {
    const t = await TestSession.start();
    t.mockHook("rcpt", async () => {
      await new Promise((r) => setTimeout(r, 5));
      return [DENYSOFT, "later"];
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).text).toBe("later");
  });

  test("each plugin's return code is noted, and deny/ok hooks hear about it", async () => {
    const heard: Array<[string, number]> = [];
    const t = await TestSession.start();
    t.mockHook("deny", (_t, plugin, code) => void heard.push([plugin, code]));
    t.mockHook("ok", (_t, plugin, code) => void heard.push([plugin, code]));
    t.mockHook("mail", () => DECLINED);
    t.mockHook("rcpt", () => DENY);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    const notes = t.transaction.notes("mock_mail") as Record<string, { return: number }>;
    expect(notes["hook_mail"]!.return).toBe(DECLINED);
    await t.command("RCPT TO:<b@example.org>");
    expect(heard).toEqual([["mock_mail", DECLINED], ["mock_rcpt", DENY]]);
  });
});
