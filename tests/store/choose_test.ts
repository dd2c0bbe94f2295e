/** The `store` config file: its URL forms, and which store `this.store()` becomes. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECLINED, type Hooks } from "qpsmtpd";
import { closeStores, openStore } from "../../src/store/choose.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { parseStoreSpec } from "../../src/store/redis_url.ts";
import { SqliteStore, storeIn } from "../../src/store/store.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { deadPort } from "../helpers/daemon.ts";

afterAll(() => closeStores());

describe("the store file's value", () => {
  test("sqlite, or nothing, is the default", () => {
    expect(parseStoreSpec("")).toEqual({ kind: "sqlite" });
    expect(parseStoreSpec(" sqlite ")).toEqual({ kind: "sqlite" });
  });

  test("redis:// and rediss://: host, port, db, credentials, options", () => {
    expect(parseStoreSpec("redis://cache.example.org")).toEqual({
      kind: "redis",
      mode: "single",
      tls: false,
      nodes: [{ host: "cache.example.org", port: 6379 }],
      db: 0,
      timeoutMs: 1000,
      prefix: "",
      location: "redis://cache.example.org",
    });
    expect(parseStoreSpec("rediss://qp:p%40ss@[2001:db8::1]:6380/4?timeout=250&prefix=mx:&ca=/etc/ssl/ca.pem")).toMatchObject({
      mode: "single",
      tls: true,
      nodes: [{ host: "2001:db8::1", port: 6380 }],
      username: "qp",
      password: "p@ss",
      db: 4,
      timeoutMs: 250,
      prefix: "mx:",
      ca: "/etc/ssl/ca.pem",
      location: "rediss://qp:***@[2001:db8::1]:6380/4?timeout=250&prefix=mx:&ca=/etc/ssl/ca.pem",
    });
    expect(parseStoreSpec("redis://:secret@h/1")).toMatchObject({ password: "secret", db: 1, location: "redis://:***@h/1" });
  });

  test("the Sentinel and Cluster forms", () => {
    expect(parseStoreSpec("redis-sentinel://s1,s2:26380/mymaster/2")).toMatchObject({
      mode: "sentinel",
      nodes: [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }],
      master: "mymaster",
      db: 2,
    });
    expect(parseStoreSpec("rediss-cluster://a:7000,b:7001,c:7002")).toMatchObject({
      mode: "cluster",
      tls: true,
      nodes: [{ host: "a", port: 7000 }, { host: "b", port: 7001 }, { host: "c", port: 7002 }],
      db: 0,
    });
  });

  test("what is wrong is said, and a password never shows", () => {
    const bad: Array<[string, string]> = [
      ["memcached://h", "is not sqlite, redis://"],
      ["redis://a,b", "takes one host"],
      ["redis://h/x", `"/x" is not /DB`],
      ["redis://h:99999", "port 99999 is out of range"],
      ["redis-sentinel://s1", "needs the master's name"],
      ["redis-cluster://a:1/2", "only database 0"],
      ["redis://h?timeout=soon", `unknown option "timeout=soon"`],
      ["redis://h?tls=1", `unknown option "tls=1"`],
    ];
    for (const [value, why] of bad) expect(() => parseStoreSpec(value)).toThrow(why);
    expect(() => parseStoreSpec("mongodb://u:hunter2@h")).toThrow("mongodb://u:***@h");
  });
});

describe("openStore", () => {
  test("SQLite in the directory asked for when there is no store file", () => {
    const d = mkdtempSync(join(tmpdir(), "qpdb-"));
    expect(openStore(d, Date.now)).toBe(storeIn(d));
    expect(openStore(d, Date.now, "sqlite")).toBeInstanceOf(SqliteStore);
  });

  test("a Redis URL is one store whatever the directory", async () => {
    const url = `redis://127.0.0.1:${await deadPort()}/0?timeout=100`;
    const a = openStore("/nonexistent/a", Date.now, url);
    expect(a).toBeInstanceOf(RedisStore);
    expect(openStore("/nonexistent/b", Date.now, url)).toBe(a);
  });

  test("a broken store file fails every operation (never a silent local store) and logs why", async () => {
    const logs: string[] = [];
    const s = openStore("/tmp", Date.now, "redis://h/x", (level, m) => logs.push(`${level} ${m}`));
    await expect(s.get("k")).rejects.toThrow(`store: "/x" is not /DB`);
    await expect(s.ping()).rejects.toThrow();
    expect(logs).toEqual([`3 store: "/x" is not /DB (a database number)`]);
  });

  test("the store config file reaches plugins through this.store()", async () => {
    const url = `redis://127.0.0.1:${await deadPort()}/0?timeout=100&prefix=choose:`;
    const seen: string[] = [];
    const probe: Hooks["helo"] = function () {
      seen.push(this.store().location, this.server.store("/elsewhere").location);
      return DECLINED;
    };
    const t = await TestSession.start({
      plugins: ["probe db_dir /tmp/ignored"],
      modules: { probe: { hook_helo: probe } },
      config: { store: url },
    });
    await t.command("HELO c");
    expect(seen).toEqual([url, url]);
  });
});
