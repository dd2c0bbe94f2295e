/**
 * limit: the `limit` file's grammar; each limit on the SQLite store with a FakeClock (windows
 * slide as the clock moves); then on a real redis-server: counting, Redis killed mid-test (fail
 * open with a warning, or defer with `store_failure closed`) and back; and `check()`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientKey, parseLimits } from "../../plugins/limit.ts";
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

/** A session from `ip` under `limits`, with the store `args` say (db_dir or the `store` file). */
function session(limits: string[], ip: string, args: string, extra: Record<string, string | string[]> = {}) {
  return TestSession.start({
    clock,
    plugins: [`limit ${args}`, "auth/auth_flat_file", "rcpt_ok"],
    config: { limit: limits, rcpthosts: "example.org", flat_auth_pw: ["alice@example.org:secret"], ...extra },
    remoteIp: ip,
  });
}

async function mail(t: TestSession, from: string): Promise<number> {
  await t.command("RSET");
  return (await t.command(`MAIL FROM:${from}`)).code;
}

describe("the limit file", () => {
  test("reads every kind of line", () => {
    expect(parseLimits([
      "# comment",
      "concurrency ip 5",
      "connections ip 30/1m   # per minute",
      "messages user 500/1d alice",
      "recipients sender 10/90s @Example.org",
      "messages ip 0 2001:db8::/32",
      "messages sender 3/h",
    ])).toEqual([
      { what: "concurrency", per: "ip", limit: 5, period: 0 },
      { what: "connections", per: "ip", limit: 30, period: 60 },
      { what: "messages", per: "user", limit: 500, period: 86400, match: "alice" },
      { what: "recipients", per: "sender", limit: 10, period: 90, match: "@example.org" },
      { what: "messages", per: "ip", limit: 0, period: 0, match: "2001:db8::/32" },
      { what: "messages", per: "sender", limit: 3, period: 3600 },
    ]);
  });

  test("names the bad line and says why", () => {
    const bad: Array<[string, string]> = [
      ["messages ip", `"" is not LIMIT or LIMIT/PERIOD`],
      ["bytes ip 5/1m", "the first word is concurrency, connections, messages or recipients"],
      ["concurrency user 5", "concurrency counts per ip"],
      ["concurrency ip 5/1m", "concurrency has no period"],
      ["messages ip 5", "a rate needs a period"],
      ["messages ip 5/0m", "the period is 0"],
      ["messages ip 5/1w", `"5/1w" is not LIMIT or LIMIT/PERIOD`],
      ["messages ip 5/1m nonsense", `"nonsense" is not an address or CIDR`],
      ["messages ip 5/1m 10.0.0.0/8 extra", "too many words"],
    ];
    for (const [line, why] of bad) expect(() => parseLimits([line])).toThrow(`limit: "${line}": ${why}`);
  });

  test("a bad line stops start-up; an unknown store_failure too", async () => {
    await expect(session(["messages ip 5"], "192.0.2.1", `db_dir ${dbDir()}`)).rejects.toThrow('limit: "messages ip 5"');
    await expect(session([], "192.0.2.1", `db_dir ${dbDir()} store_failure maybe`)).rejects.toThrow("store_failure is open or closed");
  });

  test("IPv4 addresses count alone, IPv6 addresses by /64 (or ipv6_prefix)", () => {
    expect(clientKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("2001:db8:1:2::7")).toBe("2001:db8:1:2:0:0:0:0/64");
    expect(clientKey("2001:db8:1:2:ffff::1")).toBe("2001:db8:1:2:0:0:0:0/64");
    expect(clientKey("2001:db8:1:2::7", 48)).toBe("2001:db8:1:0:0:0:0:0/48");
  });
});

describe("limit on the SQLite store", () => {
  test("concurrency: the connection past the limit is refused; a disconnect frees its place", async () => {
    const args = `db_dir ${dbDir()}`;
    const limits = ["concurrency ip 2"];
    const a = await session(limits, "192.0.2.10", args);
    const b = await session(limits, "192.0.2.10", args);
    expect([a.greeting?.code, b.greeting?.code]).toEqual([220, 220]);
    const c = await session(limits, "192.0.2.10", args);
    expect(c.greeting?.code).toBe(450);
    expect(c.greeting?.text).toBe("Too many concurrent connections from your address, try again later");
    expect(c.closed).toBe(true);
    expect((await session(limits, "192.0.2.11", args)).greeting?.code).toBe(220); // another address
    await a.command("QUIT");
    await a.done;
    expect((await session(limits, "192.0.2.10", args)).greeting?.code).toBe(220);
  });

  test("concurrency counts an IPv6 /64 as one client; 0 lifts the limit for a network", async () => {
    const args = `db_dir ${dbDir()}`;
    const limits = ["concurrency ip 1", "concurrency ip 0 2001:db8:ffff::/48"];
    expect((await session(limits, "2001:db8:1:2::1", args)).greeting?.code).toBe(220);
    expect((await session(limits, "2001:db8:1:2::99", args)).greeting?.code).toBe(450);
    expect((await session(limits, "2001:db8:1:3::1", args)).greeting?.code).toBe(220);
    expect((await session(limits, "2001:db8:ffff:1::1", args)).greeting?.code).toBe(220);
    expect((await session(limits, "2001:db8:ffff:1::2", args)).greeting?.code).toBe(220);
  });

  test("connection rate: refused past the limit, refused tries do not count, the window slides", async () => {
    const args = `db_dir ${dbDir()}`;
    const limits = ["connections ip 2/1m"];
    for (let i = 0; i < 2; i++) expect((await session(limits, "192.0.2.20", args)).greeting?.code).toBe(220);
    await clock.advance(30_000);
    const refused = await session(limits, "192.0.2.20", args);
    expect([refused.greeting?.code, refused.greeting?.text]).toEqual([450, "Connection rate limit exceeded, try again later"]);
    expect(refused.connection.notes("limit")).toBe("connections ip");
    await session(limits, "192.0.2.20", args); // refused again, not recorded
    await clock.advance(30_001); // the first two left the window
    expect((await session(limits, "192.0.2.20", args)).greeting?.code).toBe(220);
  });

  test("messages per address, per sender (a domain exempt) and per AUTH user", async () => {
    const args = `db_dir ${dbDir()}`;
    const limits = ["messages ip 4/1h", "messages sender 2/1h", "messages sender 0 @example.org", "messages user 1/1h"];
    const t = await session(limits, "192.0.2.30", args);
    await t.command("EHLO c");
    expect(await mail(t, "<a@example.net>")).toBe(250);
    expect(await mail(t, "<a@example.net>")).toBe(250);
    const third = await t.command("MAIL FROM:<a@example.net>");
    expect([third.code, third.text]).toEqual([450, "Message rate limit exceeded for this sender, try again later"]);
    expect(await mail(t, "<b@sub.example.org>")).toBe(250); // exempt per sender; the address has 4 (the refused MAIL counts for it)
    const fifth = await t.command("MAIL FROM:<b@sub.example.org>");
    expect(fifth.text).toBe("Message rate limit exceeded for your address, try again later");
    await clock.advance(3600_001);
    const u = await session(limits, "192.0.2.31", args);
    await u.command("EHLO c");
    expect((await u.command(`AUTH PLAIN ${btoa("\0alice@example.org\0secret")}`)).code).toBe(235);
    expect(await mail(u, "<x@example.org>")).toBe(250);
    expect((await u.command("RSET")).code).toBe(250);
    expect((await u.command("MAIL FROM:<y@example.org>")).text).toBe("Message rate limit exceeded for your user, try again later");
  });

  test("recipients per address over a period", async () => {
    const args = `db_dir ${dbDir()}`;
    const t = await session(["recipients ip 3/10m"], "192.0.2.40", args);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    for (const r of ["r1", "r2", "r3"]) expect((await t.command(`RCPT TO:<${r}@example.org>`)).code).toBe(250);
    const over = await t.command("RCPT TO:<r4@example.org>");
    expect([over.code, over.text]).toEqual([450, "Recipient rate limit exceeded for your address, try again later"]);
    await clock.advance(600_001);
    expect((await t.command("RCPT TO:<r5@example.org>")).code).toBe(250);
  });

  test("a changed file applies at once; a broken change keeps the last good limits", async () => {
    const args = `db_dir ${dbDir()}`;
    const t = await session(["messages ip 1/1h"], "192.0.2.50", args);
    await t.command("EHLO c");
    expect(await mail(t, "<a@example.net>")).toBe(250);
    expect(await mail(t, "<a@example.net>")).toBe(450);
    t.mockConfig("limit", ["messages ip 3/1h"]);
    expect(await mail(t, "<a@example.net>")).toBe(250);
    t.mockConfig("limit", ["messages ip three"]);
    expect(await mail(t, "<a@example.net>")).toBe(250); // still 3
    expect(await mail(t, "<a@example.net>")).toBe(450);
    expect(t.logs.some((l) => l.message.includes('limit: "messages ip three"') && l.message.includes("keeping the previous limits"))).toBe(
      true,
    );
  });
});

describe("limit on a real Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    closeStores();
    await redis.stop();
  });
  let n = 0;
  const store = (): string => `${redis.url}?timeout=300&prefix=lim${++n}:`;

  test("counts in Redis: two sessions' messages add up; the keys are the plugin's", async () => {
    const url = store();
    const limits = ["messages ip 3/1h"];
    const a = await session(limits, "192.0.2.60", "", { store: url });
    const b = await session(limits, "192.0.2.60", "", { store: url });
    await a.command("EHLO a");
    await b.command("EHLO b");
    expect(await mail(a, "<a@example.net>")).toBe(250);
    expect(await mail(b, "<a@example.net>")).toBe(250);
    expect(await mail(a, "<a@example.net>")).toBe(250);
    expect(await mail(b, "<a@example.net>")).toBe(450);
    const prefix = new URL(url.replace(/^redis/, "http")).searchParams.get("prefix")!;
    expect(redis.cli("zcard", `${prefix}limit|messages|ip|192.0.2.60`)).toBe("3");
  });

  test("Redis killed mid-test: fail open with one warning; back, the limits apply again", async () => {
    const url = store();
    const limits = ["messages ip 1/1h", "concurrency ip 5"];
    const t = await session(limits, "192.0.2.70", "", { store: url });
    await t.command("EHLO c");
    expect(await mail(t, "<a@example.net>")).toBe(250);
    expect(await mail(t, "<a@example.net>")).toBe(450);
    await redis.kill();
    try {
      const t0 = performance.now();
      expect(await mail(t, "<a@example.net>")).toBe(250); // fail open
      expect(await mail(t, "<a@example.net>")).toBe(250);
      expect(performance.now() - t0).toBeLessThan(1000);
      const warnings = t.logs.filter((l) => l.plugin === "limit" && l.level === 4);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/^store failed \(.*\): not counting, letting the client through$/);
      expect((await session(limits, "192.0.2.71", "", { store: url })).greeting?.code).toBe(220);
    } finally {
      await redis.restart();
    }
    const until = Date.now() + 15_000;
    let code = 250;
    while (code === 250 && Date.now() < until) {
      code = await mail(t, "<a@example.net>"); // the first after recovery counts; the second is refused
      if (code === 250) await Bun.sleep(100);
    }
    expect(code).toBe(450);
  }, 30_000);

  test("store_failure closed defers while the store is unreachable", async () => {
    const url = `redis://127.0.0.1:${await deadPort()}/0?timeout=200`;
    const c = await session(["concurrency ip 5"], "192.0.2.80", "store_failure closed", { store: url });
    expect([c.greeting?.code, c.greeting?.text]).toEqual([450, "Cannot check sending limits now, try again later"]);
    const o = await session(["concurrency ip 5"], "192.0.2.80", "", { store: url });
    expect(o.greeting?.code).toBe(220);
  });

  test("check() reports bad lines and an unreachable store; nothing when all is well", async () => {
    const bad = await testRegistry({
      plugins: ["limit"],
      config: { limit: ["messages ip 5/1m"], store: `redis://127.0.0.1:${await deadPort()}/0?timeout=200` },
    });
    const warnings = await pluginChecks(bad);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^limit: store redis:\/\/127\.0\.0\.1:\d+\/0\?timeout=200 does not answer \(.*\): limits would not be enforced$/,
    );
    const good = await testRegistry({ plugins: ["limit"], config: { limit: ["messages ip 5/1m"], store: store() } });
    expect(await pluginChecks(good)).toEqual([]);
    const empty = await testRegistry({ plugins: ["limit"], config: { store: store() } });
    expect(await pluginChecks(empty)).toEqual(["limit: the limit file is empty or missing: nothing is limited"]);
  });
});

describe("limit arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("limit store_falure closed", "store_falure");
  });
});
