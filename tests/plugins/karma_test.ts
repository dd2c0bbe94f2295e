/**
 * karma: the penalty box on the SQLite store, its arguments and karma_tlds; then on a real
 * redis-server: shared between sessions, concurrent disconnects, Redis killed, `check()`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED } from "qpsmtpd";
import type { Hooks } from "qpsmtpd";
import { pluginChecks } from "../../src/core/checks.ts";
import { closeStores } from "../../src/store/choose.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { type RedisServer, startRedis } from "../helpers/redis.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpdb-"));

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
    const t = await TestSession.start({
      plugins: [`karma db_dir ${dir}`, "bad"],
      modules: { bad: { hook_mail: badActor } },
      remoteIp: "192.0.2.40",
    });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.end();
    const n = await TestSession.start({ plugins: [`karma db_dir ${dir} reject naughty`], remoteIp: "192.0.2.40" });
    expect(n.greeting?.code).toBe(220);
    expect(n.connection.notes("naughty")).toContain("You were naughty");
    const relay = await TestSession.start({
      plugins: ["relay", `karma db_dir ${dir}`],
      config: { relayclients: "192.0.2.40" },
      remoteIp: "192.0.2.40",
    });
    expect(relay.greeting?.code).toBe(220);
    const neutral = await TestSession.start({ plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.41" });
    await neutral.end();
    expect((await TestSession.start({ plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.41" })).greeting?.code).toBe(220);
  });
});

describe("karma arguments", () => {
  const bad = (n: number): Hooks["mail"] =>
    function () {
      this.adjust_karma(n);
      return DECLINED;
    };
  const visit = async (args: string, score: number, ip: string) => {
    const t = await TestSession.start({
      plugins: [`karma ${args}`, "scorer"],
      modules: { scorer: { hook_mail: bad(score) } },
      remoteIp: ip,
    });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.end();
    return (await TestSession.start({ plugins: [`karma ${args}`], remoteIp: ip })).greeting!;
  };
  test("negative sets the threshold; penalty_days the length; reject_type the code; reject 0 only notes", async () => {
    const dir = dbDir();
    expect((await visit(`db_dir ${dir} negative 3`, -2, "192.0.2.70")).code).toBe(220);
    const g = await visit(`db_dir ${dir} negative 3 penalty_days 2`, -3, "192.0.2.71");
    expect([g.code, g.text]).toEqual([450, "You were naughty. You cannot connect for 2 more days."]);
    expect((await visit(`db_dir ${dir} reject_type perm`, -1, "192.0.2.72")).code).toBe(550);
    expect((await visit(`db_dir ${dir} reject 0`, -1, "192.0.2.73")).code).toBe(220);
  });
});

describe("karma_tlds", () => {
  test("the PTR name's TLD adds its score", async () => {
    const t = await TestSession.start({
      plugins: [`karma db_dir ${dbDir()}`],
      config: { karma_tlds: ["info -3", "org 1"] },
      remoteIp: "192.0.2.80",
    });
    t.connection.remote_host = "host.spammy.info";
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(t.connection.notes("karma")).toBe(-3);
  });
});

describe("karma on a real Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    closeStores();
    await redis.stop();
  });
  let n = 0;
  const url = (): string => `${redis.url}?timeout=300&prefix=karma${++n}:`;
  const visit = async (store: string, score: number, ip: string) => {
    const t = await TestSession.start({
      plugins: ["karma", "scorer"],
      modules: { scorer: { hook_mail: score === 0 ? () => DECLINED : bad(score) } },
      config: { store },
      remoteIp: ip,
    });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    return t;
  };
  const bad = (n: number): Hooks["mail"] =>
    function () {
      this.adjust_karma(n);
      return DECLINED;
    };

  test("the penalty box is shared; disconnects at the same moment all count", async () => {
    const store = url();
    const t = await visit(store, -2, "192.0.2.100");
    await t.end();
    const again = await TestSession.start({ plugins: ["karma"], config: { store }, remoteIp: "192.0.2.100" });
    expect(again.greeting?.code).toBe(450);
    const many = await Promise.all(Array.from({ length: 8 }, () => visit(store, 1, "192.0.2.101")));
    await Promise.all(many.map((s) => s.end()));
    const prefix = store.slice(store.indexOf("prefix=") + 7);
    expect(JSON.parse(redis.cli("get", `${prefix}karma|192.0.2.101`))).toMatchObject({ connects: 8, nice: 8, naughty: 0 });
  });

  test("Redis killed: clients get in without history, visits are not recorded, one warning; check() says so", async () => {
    const store = url();
    await (await visit(store, -2, "192.0.2.102")).end();
    await redis.kill();
    try {
      const t = await visit(store, -2, "192.0.2.102");
      expect(t.greeting?.code).toBe(220);
      await t.end();
      const warnings = t.logs.filter((l) => l.plugin === "karma" && l.level === 4).map((l) => l.message);
      expect(warnings).toEqual([expect.stringMatching(/^store failed \(.*\): no history, letting the client in$/)]);
      const checks = await pluginChecks(await testRegistry({ plugins: ["karma"], config: { store } }));
      expect(checks).toEqual([expect.stringMatching(/^karma: store .* does not answer \(.*\): clients would get in without history$/)]);
    } finally {
      await redis.restart();
    }
  }, 30_000);
});

describe("karma arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("karma negative 2 penalty 3", "penalty");
  });
  test("negative and penalty_days must be numbers: a word stops the load, naming the line", async () => {
    for (
      const [line, word] of [["karma negative two", 'negative is a number, not "two"'], [
        "karma penalty_days 1d",
        'penalty_days is a number, not "1d"',
      ]]
    ) {
      await expect(TestSession.start({ plugins: [line!] })).rejects.toThrow(
        `(override plugins):1: plugin karma failed to load: karma: ${word}`,
      );
    }
    await TestSession.start({ plugins: ["karma negative 3 penalty_days 0.5"] });
  });
});
