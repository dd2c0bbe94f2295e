/** greylisting and karma, on the SQLite store. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, OK } from "qpsmtpd";
import type { Hooks } from "qpsmtpd";
import { SqliteStore } from "../../src/store/store.ts";
import { TestSession } from "../../src/testing/harness.ts";

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpdb-"));

describe("SqliteStore", () => {
  test("values expire; keys by prefix", async () => {
    const s = new SqliteStore(join(dbDir(), "x.sqlite"));
    await s.set("a|1", "one");
    await s.set("a|2", "two", 0.05);
    await s.set("b|1", "three");
    expect(await s.get("a|1")).toBe("one");
    expect((await s.keys("a|")).sort()).toEqual(["a|1", "a|2"]);
    await Bun.sleep(80);
    expect(await s.get("a|2")).toBeUndefined();
    await s.delete("a|1");
    expect(await s.keys("a|")).toEqual([]);
    s.close();
  });
});

describe("greylisting", () => {
  async function attempt(args: string, ip = "192.0.2.7", to = "<b@example.org>"): Promise<{ mail: number; rcpt: number; t: TestSession }> {
    const t = await TestSession.start({ plugins: [`greylisting ${args}`, "rcpt_ok"], remoteIp: ip, config: { rcpthosts: "example.org" } });
    await t.command("EHLO c");
    const mail = (await t.command("MAIL FROM:<a@example.net>")).code;
    const rcpt = mail === 250 ? (await t.command(`RCPT TO:${to}`)).code : 0;
    return { mail, rcpt, t };
  }

  test("by address: first try deferred, too-early retry deferred, later retry passes and is remembered", async () => {
    const args = `db_dir ${dbDir()} black_timeout 1`;
    const first = await attempt(args);
    expect(first.mail).toBe(450);
    expect(first.t.replies.at(-1)!.text).toBe("This mail is temporarily denied");
    expect((await attempt(args)).mail).toBe(450);
    await Bun.sleep(1100);
    const later = await attempt(args);
    expect(later.mail).toBe(250);
    expect(later.t.transaction.notes("greylist")).toBe("pass");
    const again = await attempt(args);
    expect(again.mail).toBe(250);
    expect(again.t.transaction.notes("greylist")).toBe("white");
    expect((await attempt(args, "192.0.2.8")).mail).toBe(450);
  }, 10000);

  test("per recipient with recipient 1; deny_late defers at DATA; reject 0 only notes", async () => {
    const dir = dbDir();
    const r = await attempt(`db_dir ${dir} recipient 1`);
    expect([r.mail, r.rcpt]).toEqual([250, 450]);
    expect(r.t.replies.at(-1)!.text).toBe("This mail is temporarily denied");
    const late = await TestSession.start({ plugins: [`greylisting db_dir ${dbDir()} recipient 1 deny_late 1`], remoteIp: "192.0.2.9" });
    late.mockHook("rcpt", (txn) => (txn.notes("greylist") ? OK : DECLINED));
    await late.command("EHLO c");
    await late.command("MAIL FROM:<a@example.net>");
    await late.command("RCPT TO:<x@example.org>");
    await late.command("RCPT TO:<y@example.org>");
    expect((await late.command("DATA")).code).toBe(451);
    const test0 = await attempt(`db_dir ${dbDir()} reject 0`);
    expect(test0.mail).toBe(250);
    expect(test0.t.transaction.notes("greylist")).toBe("new");
  });

  test("relay clients are exempt; denysoft_greylist sets the text", async () => {
    const t = await TestSession.start({ plugins: ["relay", `greylisting db_dir ${dbDir()}`], config: { relayclients: "127.0.0.1", denysoft_greylist: "come back later" } });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const u = await TestSession.start({ plugins: [`greylisting db_dir ${dbDir()}`], config: { denysoft_greylist: "come back later" }, remoteIp: "192.0.2.1" });
    await u.command("EHLO c");
    expect((await u.command("MAIL FROM:<a@example.net>")).text).toBe("come back later");
  });
});

describe("karma", () => {
  const badActor: Hooks["mail"] = function () {
    this.adjust_karma(-2);
    return DECLINED;
  };

  test("a naughty connection puts the address in the penalty box; others are not affected", async () => {
    const args = `karma db_dir ${dbDir()} penalty_days 1`;
    const t = await TestSession.start({ plugins: [args, "bad"], modules: { bad: { hook_mail: badActor } }, remoteIp: "192.0.2.30" });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("QUIT");
    await t.done;
    const again = await TestSession.start({ plugins: [args], remoteIp: "192.0.2.30" });
    expect(again.greeting?.code).toBe(450);
    expect(again.greeting?.text).toBe("You were naughty. You cannot connect for 1 more day.");
    expect((await TestSession.start({ plugins: [args], remoteIp: "192.0.2.31" })).greeting?.code).toBe(220);
  });

  test("reject naughty defers; relay clients are let in; a neutral connection is not penalised", async () => {
    const dir = dbDir();
    const t = await TestSession.start({ plugins: [`karma db_dir ${dir}`, "bad"], modules: { bad: { hook_mail: badActor } }, remoteIp: "192.0.2.40" });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.end();
    const n = await TestSession.start({ plugins: [`karma db_dir ${dir} reject naughty`], remoteIp: "192.0.2.40" });
    expect(n.greeting?.code).toBe(220);
    expect(n.connection.notes("naughty")).toContain("You were naughty");
    const relay = await TestSession.start({ plugins: ["relay", `karma db_dir ${dir}`], config: { relayclients: "192.0.2.40" }, remoteIp: "192.0.2.40" });
    expect(relay.greeting?.code).toBe(220);
    const neutral = await TestSession.start({ plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.41" });
    await neutral.end();
    expect((await TestSession.start({ plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.41" })).greeting?.code).toBe(220);
  });
});
