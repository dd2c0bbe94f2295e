/**
 * greylisting, on the SQLite store, then on a real redis-server (a triplet shared between
 * sessions, a race for the first try, Redis killed mid-test, `check()`). The plugin and the
 * store read the server's clock, so the tests move a FakeClock past the black, grey and white
 * timeouts instead of waiting (Redis expires on its own clock; the timeouts here are long).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, OK } from "qpsmtpd";
import { pluginChecks } from "../../src/core/checks.ts";
import { closeStores } from "../../src/store/choose.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { deadPort } from "../helpers/daemon.ts";
import { type RedisServer, startRedis } from "../helpers/redis.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpdb-"));
let clock = new FakeClock();
beforeEach(() => {
  clock = new FakeClock();
});

describe("greylisting", () => {
  async function attempt(args: string, ip = "192.0.2.7", to = "<b@example.org>"): Promise<{ mail: number; rcpt: number; t: TestSession }> {
    const t = await TestSession.start({
      clock,
      plugins: [`greylisting ${args}`, "rcpt_ok"],
      remoteIp: ip,
      config: { rcpthosts: "example.org" },
    });
    await t.command("EHLO c");
    const mail = (await t.command("MAIL FROM:<a@example.net>")).code;
    const rcpt = mail === 250 ? (await t.command(`RCPT TO:${to}`)).code : 0;
    return { mail, rcpt, t };
  }

  test("mode testonly only notes, mode off does nothing; p0f greylists only matching clients", async () => {
    const testonly = await attempt(`db_dir ${dbDir()} mode testonly`);
    expect(testonly.mail).toBe(250);
    expect(testonly.t.transaction.notes("greylist")).toBe("new");
    const off = await attempt(`db_dir ${dbDir()} mode off`);
    expect(off.mail).toBe(250);
    expect(off.t.transaction.notes("greylist")).toBeUndefined();
    await expect(TestSession.start({ plugins: ["greylisting mode sometimes"] })).rejects.toThrow(
      'greylisting: mode is denysoft, testonly or off, not "sometimes"',
    );
    const seen = async (p0f: Record<string, unknown> | undefined, ip: string): Promise<number> => {
      const t = await TestSession.start({ clock, plugins: [`greylisting db_dir ${dbDir()} p0f genre,windows,distance,10`], remoteIp: ip });
      if (p0f) t.connection.notes("p0f", p0f as never);
      await t.command("EHLO c");
      return (await t.command("MAIL FROM:<a@example.net>")).code;
    };
    expect(await seen({ genre: "Windows 10", distance: 3 }, "192.0.2.20")).toBe(450);
    expect(await seen({ genre: "Linux 5.x", distance: 12 }, "192.0.2.21")).toBe(450);
    expect(await seen({ genre: "Linux 5.x", distance: 3 }, "192.0.2.22")).toBe(250);
    expect(await seen(undefined, "192.0.2.23")).toBe(250);
  });

  test("by address: first try deferred, too-early retry deferred, later retry passes and is remembered", async () => {
    const args = `db_dir ${dbDir()} black_timeout 1`;
    const first = await attempt(args);
    expect(first.mail).toBe(450);
    expect(first.t.replies.at(-1)!.text).toBe("This mail is temporarily denied");
    expect((await attempt(args)).mail).toBe(450);
    await clock.advance(1100);
    const later = await attempt(args);
    expect(later.mail).toBe(250);
    expect(later.t.transaction.notes("greylist")).toBe("pass");
    const again = await attempt(args);
    expect(again.mail).toBe(250);
    expect(again.t.transaction.notes("greylist")).toBe("white");
    expect((await attempt(args, "192.0.2.8")).mail).toBe(450);
  });

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
    const t = await TestSession.start({
      plugins: ["relay", `greylisting db_dir ${dbDir()}`],
      config: { relayclients: "127.0.0.1", denysoft_greylist: "come back later" },
    });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const u = await TestSession.start({
      plugins: [`greylisting db_dir ${dbDir()}`],
      config: { denysoft_greylist: "come back later" },
      remoteIp: "192.0.2.1",
    });
    await u.command("EHLO c");
    expect((await u.command("MAIL FROM:<a@example.net>")).text).toBe("come back later");
  });
});

describe("greylisting arguments", () => {
  const attempt = async (args: string, from = "<a@example.net>", ip = "192.0.2.60") => {
    const t = await TestSession.start({
      clock,
      plugins: [`greylisting ${args}`, "rcpt_ok"],
      remoteIp: ip,
      config: { rcpthosts: "example.org" },
    });
    await t.command("EHLO c");
    await t.command(`MAIL FROM:${from}`);
    return (await t.command("RCPT TO:<b@example.org>")).code;
  };
  test("sender 1 keys on the sender; remote_ip 0 ignores the address", async () => {
    const a = `db_dir ${dbDir()} sender 1 black_timeout 0`;
    expect(await attempt(a)).toBe(450);
    expect(await attempt(a)).toBe(250);
    expect(await attempt(a, "<other@example.net>")).toBe(450);
    const b = `db_dir ${dbDir()} sender 1 remote_ip 0 black_timeout 0`;
    expect(await attempt(b, "<a@example.net>", "192.0.2.61")).toBe(450);
    expect(await attempt(b, "<a@example.net>", "192.0.2.62")).toBe(250);
  });
  test("grey_timeout forgets an unanswered first try; white_timeout forgets a passed sender", async () => {
    const g = `db_dir ${dbDir()} recipient 1 black_timeout 0 grey_timeout 1`;
    expect(await attempt(g)).toBe(450);
    await clock.advance(1100);
    expect(await attempt(g)).toBe(450); // the first try was forgotten: this is a new first try
    const w = `db_dir ${dbDir()} recipient 1 black_timeout 0 white_timeout 1`;
    expect(await attempt(w)).toBe(450);
    expect(await attempt(w)).toBe(250);
    await clock.advance(1100);
    expect(await attempt(w)).toBe(450);
  });
});

describe("greylisting renewals", () => {
  test("a white triplet is renewed once it is a hundredth of white_timeout old, not on every message", async () => {
    const args = `db_dir ${dbDir()} black_timeout 0 white_timeout 100`;
    const attempt = async () => {
      const t = await TestSession.start({ clock, plugins: [`greylisting ${args}`], remoteIp: "192.0.2.95" });
      await t.command("EHLO c");
      return (await t.command("MAIL FROM:<a@example.net>")).code;
    };
    expect(await attempt()).toBe(450); // new
    expect(await attempt()).toBe(250); // pass: white for 100 s
    await clock.advance(500);
    expect(await attempt()).toBe(250); // white, half a second old: not renewed
    await clock.advance(99_600);
    expect(await attempt()).toBe(450); // 100.1 s after the pass: forgotten
    expect(await attempt()).toBe(250); // black_timeout 0: passes at once
    for (let i = 0; i < 3; i++) {
      await clock.advance(60_000);
      expect(await attempt()).toBe(250); // renewed each time (a minute is over a hundredth)
    }
  });
});

describe("greylisting on a real Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    closeStores();
    await redis.stop();
  });
  let n = 0;
  const url = (): string => `${redis.url}?timeout=300&prefix=grey${++n}:`;
  const attempt = async (store: string, args = "black_timeout 1", ip = "192.0.2.90") => {
    const t = await TestSession.start({
      clock,
      plugins: [`greylisting ${args}`, "rcpt_ok"],
      remoteIp: ip,
      config: { rcpthosts: "example.org", store },
    });
    await t.command("EHLO c");
    return { code: (await t.command("MAIL FROM:<a@example.net>")).code, t };
  };

  test("the triplet lives in Redis: deferred, too early, passes after black_timeout, then white", async () => {
    const store = url();
    expect((await attempt(store)).code).toBe(450);
    expect((await attempt(store)).code).toBe(450);
    await clock.advance(1100);
    const pass = await attempt(store);
    expect([pass.code, pass.t.transaction.notes("greylist")]).toEqual([250, "pass"]);
    expect((await attempt(store)).t.transaction.notes("greylist")).toBe("white");
    const prefix = store.slice(store.indexOf("prefix=") + 7);
    expect(JSON.parse(redis.cli("get", `${prefix}grey|192.0.2.90`))).toEqual({
      first: expect.any(Number),
      white: true,
      renewed: expect.any(Number),
    });
    expect(Number(redis.cli("pttl", `${prefix}grey|192.0.2.90`))).toBeGreaterThan(3_000_000_000);
  });

  test("two hosts seeing a new triplet at once: one records it, the other sees a retry too early", async () => {
    const store = url();
    const [a, b] = await Promise.all([attempt(store, "black_timeout 60", "192.0.2.91"), attempt(store, "black_timeout 60", "192.0.2.91")]);
    expect([a.code, b.code]).toEqual([450, 450]);
    expect([a.t.transaction.notes("greylist"), b.t.transaction.notes("greylist")].sort()).toEqual(["early", "new"]);
  });

  test(
    "Redis killed mid-test: mail passes ungreylisted with one warning, or is deferred (store_failure closed); back, greylisting resumes",
    async () => {
      const store = url();
      expect((await attempt(store, "", "192.0.2.92")).code).toBe(450);
      await redis.kill();
      try {
        const open = await attempt(store, "", "192.0.2.93");
        expect([open.code, open.t.transaction.notes("greylist")]).toEqual([250, "error"]);
        const warned = open.t.logs.filter((l) => l.plugin === "greylisting" && l.level === 4);
        expect(warned.map((l) => l.message)).toEqual([expect.stringMatching(/^store failed \(.*\): letting mail through ungreylisted$/)]);
        const closed = await attempt(store, "store_failure closed", "192.0.2.93");
        expect(closed.code).toBe(450);
        expect(closed.t.replies.at(-1)!.text).toBe("Greylisting is unavailable, try again later");
      } finally {
        await redis.restart();
      }
      const until = Date.now() + 15_000;
      let code = 250;
      while (code === 250 && Date.now() < until) {
        code = (await attempt(store, "", "192.0.2.94")).code;
        if (code === 250) await Bun.sleep(100);
      }
      expect(code).toBe(450); // a fresh Redis: the triplet is new again
    },
    30_000,
  );

  test("check() reports a store that does not answer", async () => {
    const dead = `redis://127.0.0.1:${await deadPort()}/0?timeout=200`;
    const warnings = await pluginChecks(await testRegistry({ plugins: ["greylisting"], config: { store: dead } }));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^greylisting: store redis:\/\/127\.0\.0\.1:\d+\/0\?timeout=200 does not answer \(.*\): mail would pass ungreylisted$/,
      ),
    ]);
    expect(await pluginChecks(await testRegistry({ plugins: ["greylisting"], config: { store: url() } }))).toEqual([]);
  });
});

describe("greylisting arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("greylisting grey_timout 600", "grey_timout");
  });
});
