/**
 * Every hook × every return code → qpsmtpd's reply and side effect (reference §2.1), through a
 * real session with mocked hooks. "none" means no plugin registered for the hook. The hooks
 * without a reply of their own are checked to fire, with their arguments, at the right time.
 */
import { describe, expect, test } from "bun:test";
import {
  Address,
  DECLINED,
  DENY,
  DENY_DISCONNECT,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  DONE,
  HOOK_NAMES,
  type Hooks,
  LOGINFO,
  OK,
  type ReturnCode,
} from "qpsmtpd";
import type { HookName, PluginModule } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

type CodeName = "OK" | "DENY" | "DENYSOFT" | "DENY_DISCONNECT" | "DENYSOFT_DISCONNECT" | "DECLINED" | "DONE" | "none";
const CODES: Record<Exclude<CodeName, "none">, ReturnCode> = { OK, DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT, DECLINED, DONE };
/** [expected reply code or null for no reply, disconnected] */
type Expect = [number | null, boolean];
type Row = Record<CodeName, Expect>;

const ok250: Expect = [250, false];
/** A hook whose return value the core ignores (or uses only for OK with text): 250 whatever it says. */
const ignored: Row = {
  OK: ok250,
  DECLINED: ok250,
  none: ok250,
  DENY: ok250,
  DENYSOFT: ok250,
  DENY_DISCONNECT: ok250,
  DENYSOFT_DISCONNECT: ok250,
  DONE: ok250,
};
const served: Expect = [220, false];
const TABLE: Partial<Record<HookName, Row>> = {
  "pre-connection": {
    OK: served,
    DECLINED: served,
    none: served,
    DONE: served,
    DENY: [550, true],
    DENYSOFT: [451, true],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [451, true],
  },
  connect: {
    OK: [220, false],
    DECLINED: [220, false],
    none: [220, false],
    DENY: [550, true],
    DENYSOFT: [450, true],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [450, true],
    DONE: [null, false],
  },
  helo: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [550, false],
    DENYSOFT: [450, false],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [450, true],
    DONE: [null, false],
  },
  ehlo: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [550, false],
    DENYSOFT: [450, false],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [450, true],
    DONE: [null, false],
  },
  mail: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [550, false],
    DENYSOFT: [450, false],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [421, true],
    DONE: [null, false],
  },
  rcpt: {
    OK: ok250,
    DECLINED: [450, false],
    none: [450, false],
    DENY: [550, false],
    DENYSOFT: [450, false],
    DENY_DISCONNECT: [550, true],
    DENYSOFT_DISCONNECT: [421, true],
    DONE: [null, false],
  },
  data: {
    OK: [354, false],
    DECLINED: [354, false],
    none: [354, false],
    DENY: [554, false],
    DENYSOFT: [451, false],
    DENY_DISCONNECT: [554, true],
    DENYSOFT_DISCONNECT: [451, true],
    DONE: [null, false],
  },
  data_headers_end: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: ok250,
    DENYSOFT: ok250,
    DENY_DISCONNECT: [554, true],
    DENYSOFT_DISCONNECT: [421, true],
    DONE: ok250,
  },
  data_post: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [552, false],
    DENYSOFT: [452, false],
    DENY_DISCONNECT: [552, true],
    DENYSOFT_DISCONNECT: [452, true],
    DONE: [null, false],
  },
  queue_pre: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [451, false],
    DENYSOFT: [451, false],
    DENY_DISCONNECT: [451, false],
    DENYSOFT_DISCONNECT: [451, false],
    DONE: [null, false],
  },
  queue: {
    OK: ok250,
    DECLINED: [451, false],
    none: [451, false],
    DENY: [552, false],
    DENYSOFT: [452, false],
    DENY_DISCONNECT: [451, false],
    DENYSOFT_DISCONNECT: [451, false],
    DONE: [null, false],
  },
  vrfy: {
    OK: [250, false],
    DECLINED: [252, false],
    none: [252, false],
    DENY: [554, false],
    DENYSOFT: [252, false],
    DENY_DISCONNECT: [252, false],
    DENYSOFT_DISCONNECT: [252, false],
    DONE: [null, false],
  },
  noop: {
    OK: ok250,
    DECLINED: ok250,
    none: ok250,
    DENY: [500, false],
    DENYSOFT: ok250,
    DENY_DISCONNECT: [500, true],
    DENYSOFT_DISCONNECT: ok250,
    DONE: [null, false],
  },
  help: {
    OK: [214, false],
    DECLINED: [214, false],
    none: [214, false],
    DENY: [500, false],
    DENYSOFT: [214, false],
    DENY_DISCONNECT: [214, false],
    DENYSOFT_DISCONNECT: [214, false],
    DONE: [null, false],
  },
  quit: {
    OK: [221, true],
    DECLINED: [221, true],
    none: [221, true],
    DENY: [221, true],
    DENYSOFT: [221, true],
    DENY_DISCONNECT: [221, true],
    DENYSOFT_DISCONNECT: [221, true],
    DONE: [null, true],
  },
  mail_pre: ignored,
  rcpt_pre: ignored,
  data_post_headers: ignored,
  received_line: ignored,
  queue_post: ignored,
  unrecognized_command: {
    OK: [500, false],
    DECLINED: [500, false],
    none: [500, false],
    DENY: [500, false],
    DENYSOFT: [500, false],
    DENY_DISCONNECT: [521, true],
    DENYSOFT_DISCONNECT: [500, false],
    DONE: [null, false],
  },
};

const MESSAGE = "Subject: contract\n\nbody\n";

/** Runs the session up to `hook`'s stage and returns the replies that stage's input caused. */
async function drive(hook: HookName, code: CodeName, later = false): Promise<{ codes: number[]; closed: boolean }> {
  const t = await TestSession.start();
  let greeting: number[] = [];
  if (hook === "connect" || hook === "pre-connection") {
    // Re-start with the hook in place before the greeting.
    const method = hook === "connect" ? "hook_connect" : "hook_pre_connection";
    const c = await TestSession.start({ modules: { m: code === "none" ? {} : { [method]: () => CODES[code] } }, plugins: ["m"] });
    greeting = c.replies.map((r) => r.code);
    return { codes: greeting, closed: c.closed };
  }
  // `later`: the plugin answers with a promise (the engine takes an answer given at once without one).
  if (code !== "none") t.mockHook(hook, later ? () => Promise.resolve(CODES[code]) : () => CODES[code]);
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
    case "mail_pre":
      await run("EHLO c");
      codes = await run("MAIL FROM:<a@example.net>");
      break;
    case "rcpt":
    case "rcpt_pre":
      await run("EHLO c", "MAIL FROM:<a@example.net>");
      codes = await run("RCPT TO:<b@example.org>");
      break;
    case "data":
      await run("EHLO c", "MAIL FROM:<a@example.net>", "RCPT TO:<b@example.org>");
      codes = await run("DATA");
      break;
    case "data_headers_end":
    case "data_post_headers":
    case "received_line":
    case "data_post":
    case "queue_pre":
    case "queue":
    case "queue_post":
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
      test(`${hook} ${code} → ${reply ?? "no reply"}${closed ? " + disconnect" : ""}, answered at once and by a promise`, async () => {
        for (const later of [false, true]) {
          const r = await drive(hook, code, later);
          if (reply === null) expect(r.codes.filter((c) => c !== 221)).toEqual([]);
          else expect(r.codes[0]).toBe(reply);
          expect(r.closed).toBe(closed);
        }
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
      await new Promise((r) => setImmediate(r));
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

  test("a deny hook may change the lines it is given: they are its own, and the reply keeps its text", async () => {
    const t = await TestSession.start();
    const seen: string[][] = [];
    t.mockHook("deny", (_t, _plugin, _code, msg) => {
      (msg as string[]).push("added by the audit plugin");
      seen.push([...msg]);
    });
    t.mockHook("rcpt", () => DENY);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    for (const to of ["b@example.org", "c@example.org"]) {
      const r = await t.command(`RCPT TO:<${to}>`);
      expect(r.code).toBe(550);
      expect(r.text).not.toContain("added");
    }
    expect(seen).toEqual([["added by the audit plugin"], ["added by the audit plugin"]]);
  });

  test("the return note goes into the plugin's own hash, and leaves a note that is not one alone", async () => {
    const t = await TestSession.start();
    t.mockHook("rcpt", () => DECLINED);
    t.mockHook("mail", () => DECLINED);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(t.transaction.notes("mock_mail")).toEqual({ hook_mail: { return: DECLINED } });
    const mine: { hook_rcpt: Record<string, number> } = { hook_rcpt: { seen: 1 } };
    t.transaction.notes("mock_rcpt", mine);
    await t.command("RCPT TO:<b@example.org>");
    await t.command("RCPT TO:<c@example.org>");
    expect(t.transaction.notes("mock_rcpt")).toBe(mine);
    expect(mine.hook_rcpt).toEqual({ seen: 1, return: DECLINED });
    for (const theirs of ["a plugin's own string", ["a", "list"]]) {
      t.transaction.notes("mock_rcpt", theirs);
      await t.command("RCPT TO:<b@example.org>");
      expect(t.transaction.notes("mock_rcpt")).toEqual(theirs);
    }
  });
});

/** A full session: greeting, EHLO, one message, QUIT. */
async function conversation(t: TestSession): Promise<number[]> {
  const codes: number[] = [];
  for (const l of ["EHLO client.example", "MAIL FROM:<a@example.net> SIZE=10", "RCPT TO:<b@example.org>", "DATA"]) {
    codes.push((await t.command(l)).code);
  }
  codes.push((await t.data("Subject: s\n\nbody\n")).code);
  codes.push((await t.command("QUIT")).code);
  await t.done;
  return codes;
}

/** Starts a session whose recipients and messages are accepted, with `module` loaded first. */
function withPlugin(module: PluginModule, extra: Parameters<typeof TestSession.start>[0] = {}): Promise<TestSession> {
  return TestSession.start({ ...extra, modules: { accept, ...extra.modules, probe: module }, plugins: ["probe", "accept"] });
}

const accept: PluginModule = { hook_rcpt: () => OK, hook_queue: () => [OK, "Queued"] };

/** Each hook that has no reply of its own, checked to fire with its arguments; the matrix covers the rest. */
const FIRES: Partial<Record<HookName | `${HookName}-${string}`, () => Promise<void>>> = {
  async logging() {
    const seen: unknown[][] = [];
    const hook: Hooks["logging"] = function (_t, level, hook, plugin, message, connection) {
      if (message.startsWith("probe says")) seen.push([level, hook, plugin, message, connection]);
      return DECLINED;
    };
    const t = await TestSession.start({
      modules: {
        logger: { hook_logging: hook },
        probe: {
          hook_helo() {
            this.log(LOGINFO, "probe says hi");
            return DECLINED;
          },
        },
      },
      config: { logging: "logger" },
      plugins: ["probe"],
    });
    await t.command("HELO c");
    expect(seen).toEqual([[LOGINFO, "helo", "probe", "probe says hi", "test"]]);
  },
  async config() {
    const asked: string[] = [];
    const t = await withPlugin({
      hook_config: (_t, name) => (asked.push(name), name === "smtpgreeting" ? [OK, "probe.example ready"] : DECLINED),
    });
    expect(t.greeting?.text).toBe("probe.example ready ESMTP");
    expect(asked).toContain("smtpgreeting");
  },
  async user_config() {
    const seen: string[] = [];
    const t = await TestSession.start({
      modules: { probe: { hook_user_config: (_t, addr, name) => (seen.push(`${addr} ${name}`), [OK, "per-user"]) } },
      plugins: ["probe"],
    });
    expect(t.qp.config("spam_threshold", new Address("u", "example.org"))).toBe("per-user");
    expect(t.qp.config("spam_threshold")).toBeUndefined();
    expect(seen).toEqual(["<u@example.org> spam_threshold"]);
  },
  async "post-fork"() {
    // qpsmtpd keeps the name registrable but never fires it (there is no fork here either).
    let fired = 0;
    const t = await withPlugin({ hook_post_fork: () => void fired++ });
    expect(await conversation(t)).toEqual([250, 250, 250, 354, 250, 221]);
    expect(fired).toBe(0);
  },
  async ehlo_parse() {
    const t = await TestSession.start({
      modules: { probe: { hook_ehlo_parse: () => [OK, (_cmd: string, line: string) => [OK, line.toLowerCase()]] } },
      plugins: ["probe"],
    });
    expect((await t.command("EHLO CLIENT.EXAMPLE")).code).toBe(250);
    expect(t.connection.hello_host).toBe("client.example");
  },
  async helo_parse() {
    const t = await TestSession.start({
      modules: { probe: { hook_helo_parse: () => [OK, () => [DENY, "not that name"]] } },
      plugins: ["probe"],
    });
    expect(await t.command("HELO x")).toMatchObject({ code: 501, text: "not that name" });
  },
  async mail_parse() {
    const t = await TestSession.start({
      modules: {
        probe: { hook_mail_parse: () => [OK, (_c: string, line: string) => [OK, line.replace(/^from:\s*/i, "").split(" ")[0]!]] },
      },
      plugins: ["probe"],
    });
    await t.command("HELO c");
    expect((await t.command("MAIL FROM:<a@example.net> WHATEVER=1")).code).toBe(250);
    expect(String(t.transaction.sender())).toBe("<a@example.net>");
  },
  async rcpt_parse() {
    const t = await TestSession.start({ modules: { probe: { hook_rcpt_parse: () => [OK, () => [DENY]] } }, plugins: ["probe"] });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(await t.command("RCPT TO:<b@example.org>")).toMatchObject({ code: 501, text: "Syntax error in command" });
  },
  async auth_parse() {
    const seen: string[] = [];
    const t = await TestSession.start({
      modules: {
        probe: {
          hook_auth_parse: (_t, line) => (seen.push(line), [OK, () => [OK, "PLAIN", Buffer.from("\0u\0p").toString("base64")]]),
          hook_auth: (_t, mech, user, pass) => (seen.push(`${mech} ${user} ${pass}`), OK),
        },
      },
      plugins: ["probe"],
    });
    await t.command("EHLO c");
    expect((await t.command("AUTH something-only-the-parser-knows")).code).toBe(235);
    expect(seen).toEqual(["something-only-the-parser-knows", "PLAIN u p"]);
  },
  async auth() {
    const seen: unknown[][] = [];
    const t = await TestSession.start({ modules: { probe: { hook_auth: (_t, ...args) => (seen.push(args), DENY) } }, plugins: ["probe"] });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${Buffer.from("\0user\0secret").toString("base64")}`)).code).toBe(535);
    expect(seen).toEqual([["PLAIN", "user", "secret", undefined, undefined]]);
  },
  async "auth-plain"() {
    const t = await TestSession.start({
      modules: { probe: { hook_auth_plain: (_t, _m, user, pass) => (user === "u" && pass === "p" ? OK : DENY) } },
      plugins: ["probe"],
    });
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN");
    expect((await t.command(`AUTH PLAIN ${Buffer.from("\0u\0p").toString("base64")}`)).code).toBe(235);
    expect(t.qp.auth_user).toBe("u");
  },
  async "auth-temporary"() {
    // A backend that cannot answer (DENYSOFT) is a temporary failure, as in qpsmtpd: 454, not 535.
    const t = await TestSession.start({ modules: { probe: { hook_auth_plain: () => [DENYSOFT, "directory down"] } }, plugins: ["probe"] });
    await t.command("EHLO c");
    expect(await t.command(`AUTH PLAIN ${Buffer.from("\0u\0p").toString("base64")}`)).toMatchObject({ code: 454, text: "directory down" });
    expect(t.qp.authenticated()).toBe(false);
    expect(t.connection.notes("auth_failures")).toBeUndefined();
  },
  async "auth-login"() {
    const t = await TestSession.start({
      modules: { probe: { hook_auth_login: (_t, mech, user, pass) => (mech === "LOGIN" && user === "u" && pass === "p" ? OK : DENY) } },
      plugins: ["probe"],
    });
    expect((await t.command("EHLO c")).lines).toContain("AUTH LOGIN");
    expect((await t.command(`AUTH LOGIN ${Buffer.from("u").toString("base64")}`)).code).toBe(334);
    expect((await t.command(Buffer.from("p").toString("base64"))).code).toBe(235);
  },
  async "auth-cram-md5"() {
    const seen: unknown[] = [];
    const t = await TestSession.start({
      modules: {
        probe: {
          hook_auth_cram_md5: (_t, mech, user, clear, hash, ticket) => (seen.push(mech, user, clear, hash, ticket?.startsWith("<")), DENY),
        },
      },
      plugins: ["probe"],
    });
    expect((await t.command("EHLO c")).lines).toContain("AUTH CRAM-MD5");
    expect((await t.command("AUTH CRAM-MD5")).code).toBe(334);
    expect((await t.command(Buffer.from(`u ${"0".repeat(32)}`).toString("base64"))).code).toBe(535);
    expect(seen).toEqual(["CRAM-MD5", "u", undefined, "0".repeat(32), true]);
  },
  async data_headers_end() {
    let subject: string | undefined;
    const t = await withPlugin({ hook_data_headers_end: (txn) => void (subject = txn.header()?.get("Subject", 0)) });
    expect(await conversation(t)).toEqual([250, 250, 250, 354, 250, 221]);
    expect(subject).toBe("s\n");
  },
  async data_post_headers() {
    const t = await withPlugin({ hook_data_post_headers: (txn) => void txn.header()?.add("X-Probe", "seen") }, {
      modules: { accept: { hook_rcpt: () => OK, hook_queue: (txn) => [OK, `has ${txn.header()?.get("X-Probe", 0)?.trim()}`] } },
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("Subject: s\n\nbody\n")).text).toBe("has seen");
  },
  async received_line() {
    const seen: string[] = [];
    const t = await withPlugin(
      { hook_received_line: (_t, proto, auth, ssl) => (seen.push(proto, auth, ssl), [OK, "from probe by probe"]) },
      { modules: { accept: { hook_rcpt: () => OK, hook_queue: (txn) => [OK, txn.header()!.get("Received", 0)!.trim()] } } },
    );
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("Subject: s\n\nbody\n")).text).toBe("from probe by probe");
    expect(seen).toEqual(["ESMTP", "", ""]);
  },
  async queue_post() {
    const order: string[] = [];
    const t = await withPlugin({ hook_queue_post: (txn) => void order.push(`queue_post ${txn.recipients().length}`) }, {
      modules: { accept: { hook_rcpt: () => OK, hook_queue: () => (order.push("queue"), [OK, "Queued"]) } },
    });
    expect(await conversation(t)).toEqual([250, 250, 250, 354, 250, 221]);
    expect(order).toEqual(["queue", "queue_post 1"]);
  },
  async reset_transaction() {
    const resets: string[] = [];
    // A connect hook is given the transaction, so one exists at the greeting (a hook nobody registered makes none).
    const t = await withPlugin({
      hook_connect: () => DECLINED,
      hook_reset_transaction: (txn) => void resets.push(String(txn.sender() ?? "none")),
    });
    await t.command("HELO c"); // a greeting resets the (empty) transaction too (RFC 5321 4.1.4)
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RSET");
    expect(resets).toEqual(["none", "<a@example.net>"]);
    // As qpsmtpd: a hook nobody registered is given no transaction, so without the connect hook none
    // exists at the greeting, and there is nothing to reset.
    resets.length = 0;
    const bare = await withPlugin({ hook_reset_transaction: (txn) => void resets.push(String(txn.sender() ?? "none")) });
    await bare.command("HELO c");
    await bare.command("MAIL FROM:<b@example.net>");
    await bare.command("RSET");
    expect(resets).toEqual(["<b@example.net>"]);
  },
  async disconnect() {
    const order: string[] = [];
    const t = await withPlugin({
      hook_disconnect: () => void order.push("disconnect"),
      hook_post_connection: () => void order.push("post-connection"),
    });
    await t.command("QUIT");
    await t.done;
    expect(order).toEqual(["disconnect", "post-connection"]);
  },
  async "post-connection"() {
    let fired = 0;
    const t = await withPlugin({ hook_post_connection: () => void fired++ });
    await t.end();
    expect(fired).toBe(1);
  },
  async deny() {
    const heard: unknown[][] = [];
    const t = await TestSession.start({
      modules: {
        audit: { hook_deny: (_t, plugin, code, msg) => void heard.push([plugin, code, msg]) },
        probe: { hook_helo: () => [DENY, "no"] },
      },
      plugins: ["audit", "probe"],
    });
    await t.command("HELO c");
    expect(heard).toEqual([["probe", DENY, ["no"]]]);
  },
  async "deny-after-pre-connection"() {
    // Audit hooks belong to sessions: a pre-connection refusal (no session yet) does not fire them.
    const heard: string[] = [];
    const t = await TestSession.start({
      modules: {
        audit: {
          hook_deny() {
            heard.push(this.connection.remote_ip);
          },
        },
        probe: { hook_pre_connection: () => DENY },
      },
      plugins: ["audit", "probe"],
    });
    expect(t.greeting?.code).toBe(550);
    expect(heard).toEqual([]);
    expect(t.logs.filter((l) => l.message.includes("FATAL"))).toEqual([]);
  },
  async ok() {
    const heard: unknown[][] = [];
    const t = await TestSession.start({
      modules: { audit: { hook_ok: (_t, plugin, code) => void heard.push([plugin, code]) }, probe: { hook_helo: () => OK } },
      plugins: ["audit", "probe"],
    });
    await t.command("HELO c");
    expect(heard).toEqual([["probe", OK]]);
  },
};

describe("hooks without a reply of their own", () => {
  for (const [hook, check] of Object.entries(FIRES)) test(`${hook} fires with its arguments`, check!);

  test("every hook is covered by the reply matrix or by a firing check", () => {
    const covered = new Set([...Object.keys(TABLE), ...Object.keys(FIRES)]);
    expect(HOOK_NAMES.filter((h) => !covered.has(h))).toEqual([]);
  });
});
