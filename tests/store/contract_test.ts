/**
 * The Store contract, the same tests on every backend: SQLite, one real redis-server, and a real
 * three-master Redis Cluster. Windows follow the store's clock (moved by hand); expiry is
 * SQLite's clock but Redis's own, so the expiry tests wait a few real milliseconds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Store } from "qpsmtpd";
import { RedisStore } from "../../src/store/redis.ts";
import { parseStoreSpec, type RedisSpec } from "../../src/store/redis_url.ts";
import { SqliteStore } from "../../src/store/store.ts";
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from "../helpers/redis.ts";

interface Backend {
  store: Store;
  /** Moves the store's clock, and waits when expiry is the backend's own. */
  advance(ms: number): Promise<void>;
}

let redis: RedisServer;
let cluster: RedisCluster;
const opened: RedisStore[] = [];
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  for (const s of opened) s.close();
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

let n = 0;
function redisBackend(url: () => string): () => Backend {
  return () => {
    let now = 1_700_000_000_000;
    const spec = parseStoreSpec(`${url()}?prefix=t${++n}:`) as RedisSpec;
    const store = new RedisStore(spec, { now: () => now });
    opened.push(store);
    return {
      store,
      advance: async (ms) => {
        now += ms;
        await Bun.sleep(ms);
      },
    };
  };
}

const backends: Array<[string, () => Backend]> = [
  ["SQLite", () => {
    let now = 1_700_000_000_000;
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), "qpdb-")), "x.sqlite"), { now: () => now });
    return { store, advance: (ms) => Promise.resolve(void (now += ms)) };
  }],
  ["Redis", redisBackend(() => redis.url)],
  ["Redis Cluster", redisBackend(() => cluster.url)],
];

for (const [name, make] of backends) {
  describe(`Store on ${name}`, () => {
    test("get, set, delete; a TTL expires the value", async () => {
      const { store: s, advance } = make();
      expect(await s.get("a")).toBeUndefined();
      await s.set("a", "one");
      await s.set("b", "two", 0.2);
      expect([await s.get("a"), await s.get("b")]).toEqual(["one", "two"]);
      await advance(250);
      expect([await s.get("a"), await s.get("b")]).toEqual(["one", undefined]);
      await s.delete("a");
      expect(await s.get("a")).toBeUndefined();
      await s.ping();
      expect(s.location).not.toContain("password");
    });

    test("compareAndSet: only when the value is the expected one; one winner among racers", async () => {
      const { store: s, advance } = make();
      expect(await s.compareAndSet("k", "x", "y")).toBe(false);
      expect(await s.compareAndSet("k", undefined, "1", 0.2)).toBe(true);
      expect(await s.compareAndSet("k", undefined, "2")).toBe(false);
      expect(await s.compareAndSet("k", "2", "3")).toBe(false);
      expect(await s.compareAndSet("k", "1", "3", 0.2)).toBe(true);
      expect(await s.get("k")).toBe("3");
      await advance(250);
      expect(await s.get("k")).toBeUndefined(); // expired: absent again
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => s.compareAndSet("race", undefined, String(i))));
      expect(wins.filter(Boolean)).toHaveLength(1);
    });

    test("incr: from 0, by any integer, atomically; the TTL renews; a non-integer refuses", async () => {
      const { store: s, advance } = make();
      expect(await s.incr("c")).toBe(1);
      expect(await s.incr("c", 5)).toBe(6);
      expect(await s.incr("c", -7)).toBe(-1);
      expect(await s.get("c")).toBe("-1");
      await Promise.all(Array.from({ length: 50 }, () => s.incr("many", 1)));
      expect(await s.get("many")).toBe("50");
      expect(await s.incr("t", 1, 0.3)).toBe(1);
      await advance(200);
      expect(await s.incr("t", 1, 0.3)).toBe(2); // renewed: 300 ms from now
      await advance(200);
      expect(await s.incr("t")).toBe(3); // no TTL given: the expiry stays
      await advance(200);
      expect(await s.get("t")).toBeUndefined();
      await s.set("word", "abc");
      await expect(s.incr("word")).rejects.toThrow();
      await expect(s.incr("c", 1.5)).rejects.toThrow("not an integer");
      await expect(s.hit("c2", 60, { weight: -1 })).rejects.toThrow("not a whole number");
    });

    test("hit: a sliding window; limit keeps refused events out; weight; weight 0 reads", async () => {
      const { store: s, advance } = make();
      expect(await s.hit("w", 60)).toBe(1);
      await advance(20);
      expect(await s.hit("w", 60, { weight: 2 })).toBe(3);
      expect(await s.hit("w", 60, { weight: 0 })).toBe(3);
      expect(await s.hit("w", 60, { limit: 4 })).toBe(4);
      expect(await s.hit("w", 60, { limit: 4 })).toBe(5); // over: not recorded
      expect(await s.hit("w", 60, { weight: 0 })).toBe(4);
      const results = await Promise.all(Array.from({ length: 30 }, () => s.hit("par", 60, { limit: 10 })));
      expect(results.filter((r) => r <= 10)).toHaveLength(10);
      expect(await s.hit("par", 60, { weight: 0 })).toBe(10);
    });

    test("hit: events leave the window as the clock moves", async () => {
      let now = 1_700_000_000_000;
      const { store: s } = name === "SQLite"
        ? { store: new SqliteStore(join(mkdtempSync(join(tmpdir(), "qpdb-")), "y.sqlite"), { now: () => now }) }
        : (() => {
          const spec = parseStoreSpec(`${name === "Redis" ? redis.url : cluster.url}?prefix=slide${++n}:`) as RedisSpec;
          const store = new RedisStore(spec, { now: () => now });
          opened.push(store);
          return { store };
        })();
      expect(await s.hit("x", 60)).toBe(1);
      now += 30_000;
      expect(await s.hit("x", 60)).toBe(2);
      now += 30_000; // the first is exactly 60 s old: out
      expect(await s.hit("x", 60)).toBe(2);
      now += 60_001;
      expect(await s.hit("x", 60, { weight: 0 })).toBe(0);
    });

    test("keys by prefix, of every kind; glob characters are literal", async () => {
      const { store: s } = make();
      await s.set("p|a", "1");
      await s.incr("p|b");
      await s.hit("p|c", 60);
      await s.set("p*|d", "1");
      await s.set("q|e", "1");
      expect((await s.keys("p|")).sort()).toEqual(["p|a", "p|b", "p|c"]);
      expect(await s.keys("p*")).toEqual(["p*|d"]);
      await s.delete("p|c");
      expect((await s.keys("p|")).sort()).toEqual(["p|a", "p|b"]);
    });
  });
}
