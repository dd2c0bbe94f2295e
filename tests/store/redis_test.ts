/**
 * The Redis store when Redis fails, against a real redis-server: unreachable at start, killed and
 * started again, paused (it accepts and never answers), a silent peer; each time the operations
 * fail within the time limit (then at once), the outage is logged once, and the store recovers
 * by itself. Also TLS (rediss:// with a CA file) and Sentinel.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RedisStore } from "../../src/store/redis.ts";
import { parseStoreSpec, type RedisSpec } from "../../src/store/redis_url.ts";
import { brokenPeer, deadPort, freePort, startDaemon } from "../helpers/daemon.ts";
import { startRedis } from "../helpers/redis.ts";

const TLS = resolve(import.meta.dir, "../fixtures/tls");
const opened: RedisStore[] = [];
afterAll(() => {
  for (const s of opened) s.close();
});

function open(url: string): { store: RedisStore; logs: string[] } {
  const logs: string[] = [];
  const store = new RedisStore(parseStoreSpec(url) as RedisSpec, { log: (level, m) => logs.push(`${level} ${m}`) });
  opened.push(store);
  return { store, logs };
}

/** How long `p` takes to settle, and whether it rejected. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; failed: boolean; error: string }> {
  const t0 = performance.now();
  try {
    await p;
    return { ms: performance.now() - t0, failed: false, error: "" };
  } catch (e) {
    return { ms: performance.now() - t0, failed: true, error: (e as Error).message };
  }
}

async function until(what: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(50);
  }
}

describe("Redis store failures", () => {
  test("unreachable from the start: the first operation waits at most the time limit, later ones fail at once", async () => {
    const { store, logs } = open(`redis://127.0.0.1:${await deadPort()}/0?timeout=300`);
    const first = await timed(store.get("a"));
    expect(first.failed).toBe(true);
    expect(first.ms).toBeLessThan(1000);
    expect(first.error).toContain("unreachable");
    const second = await timed(store.incr("a"));
    expect(second.failed).toBe(true);
    expect(second.ms).toBeLessThan(50);
    expect(logs.filter((l) => l.includes("unreachable"))).toHaveLength(1);
    expect(logs[0]).toMatch(/^4 redis:\/\/127\.0\.0\.1:\d+\/0\?timeout=300 unreachable/);
    await expect(store.ping()).rejects.toThrow();
  });

  test("killed mid-test: fails fast, logs once, reconnects with backoff when Redis is back", async () => {
    const redis = await startRedis();
    try {
      const { store, logs } = open(`${redis.url}?timeout=500`);
      await store.set("k", "v");
      expect(await store.get("k")).toBe("v");
      await redis.kill();
      const lost = await timed(store.get("k"));
      expect(lost.failed).toBe(true);
      expect(lost.ms).toBeLessThan(600);
      const fast = await Promise.all(Array.from({ length: 20 }, () => timed(store.hit("h", 60))));
      expect(fast.every((r) => r.failed && r.ms < 50)).toBe(true);
      const warnings = logs.filter((l) => l.startsWith("4 "));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^4 redis:\/\/.* lost: .*; failing fast and reconnecting$/);
      await redis.restart();
      await until(async () => (await timed(store.set("k", "again"))).failed === false);
      expect(await store.get("k")).toBe("again"); // nothing was saved: a fresh Redis
      expect(logs.at(-1)).toMatch(/^4 redis:\/\/.* reachable again after \d+\.\d s$/);
      expect(store.up).toBe(true);
    } finally {
      await redis.stop();
    }
  }, 30_000);

  test("paused (accepts, never answers): the operation gives up at the time limit; the store recovers on resume", async () => {
    const redis = await startRedis();
    try {
      const { store, logs } = open(`${redis.url}?timeout=300`);
      await store.set("k", "v");
      redis.pause();
      const stuck = await timed(store.get("k"));
      expect(stuck.failed).toBe(true);
      expect(stuck.ms).toBeGreaterThanOrEqual(250);
      expect(stuck.ms).toBeLessThan(800);
      expect(stuck.error).toContain("no answer within 300 ms");
      expect((await timed(store.get("k"))).ms).toBeLessThan(50);
      expect(logs.join("\n")).toContain("lost: no answer within 300 ms");
      redis.resume();
      await until(async () => (await timed(store.get("k"))).failed === false);
      expect(await store.get("k")).toBe("v");
    } finally {
      await redis.stop();
    }
  }, 30_000);

  test("a peer that accepts and never speaks: connecting gives up at the time limit", async () => {
    const peer = await brokenPeer("silent");
    try {
      const { store } = open(`redis://127.0.0.1:${peer.port}/0?timeout=200`);
      const r = await timed(store.set("a", "b"));
      expect(r.failed).toBe(true);
      expect(r.ms).toBeLessThan(700);
      expect(peer.accepted).toBeGreaterThan(0);
    } finally {
      await peer.close();
    }
  });

  test("a reply error is that operation's failure only; the connection stays up", async () => {
    const redis = await startRedis();
    try {
      const { store, logs } = open(redis.url);
      await store.hit("z", 60);
      await expect(store.get("z")).rejects.toThrow("WRONGTYPE");
      expect(store.up).toBe(true);
      expect(await store.incr("n")).toBe(1);
      expect(logs).toEqual([]);
    } finally {
      await redis.stop();
    }
  });

  test("a password, the database number and the key prefix are used", async () => {
    const redis = await startRedis(["--requirepass", "s3cret"]);
    try {
      const { store } = open(`redis://:s3cret@127.0.0.1:${redis.port}/3?prefix=fleet1:`);
      expect(store.location).toBe(`redis://:***@127.0.0.1:${redis.port}/3?prefix=fleet1:`);
      await store.set("k", "v");
      expect(redis.cli("-a", "s3cret", "--no-auth-warning", "-n", "3", "get", "fleet1:k")).toBe("v");
      expect(await store.keys("")).toEqual(["k"]);
      const { store: wrong } = open(`redis://:nope@127.0.0.1:${redis.port}/3?timeout=300`);
      await expect(wrong.get("k")).rejects.toThrow();
    } finally {
      await redis.stop();
    }
  });
});

describe("Redis store over TLS and through Sentinel", () => {
  test("rediss:// with the server's CA file; without it the certificate is refused", async () => {
    const redis = await startRedis([], { tls: { cert: join(TLS, "server.crt"), key: join(TLS, "server.key") } });
    const port = redis.port;
    try {
      const { store } = open(`${redis.url}?ca=${join(TLS, "server.crt")}`);
      await store.set("k", "over tls");
      expect(await store.get("k")).toBe("over tls");
      const { store: untrusted, logs } = open(`rediss://127.0.0.1:${port}/0?timeout=500`);
      await expect(untrusted.get("k")).rejects.toThrow();
      expect(logs.join("\n")).toMatch(/self.signed|certificate/i);
    } finally {
      await redis.stop();
    }
  });

  test("redis-sentinel:// finds the master through a real Sentinel", async () => {
    const master = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), "qpsentinel-"));
    const port = await freePort();
    const conf = join(dir, "sentinel.conf");
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor qpmaster 127.0.0.1 ${master.port} 1`,
        "sentinel down-after-milliseconds qpmaster 5000",
        "",
      ]
        .join("\n"),
    );
    const sentinel = await startDaemon("redis-sentinel", ["redis-server", conf, "--sentinel"], [{ port }], { ms: 15_000 });
    try {
      const { store } = open(`redis-sentinel://127.0.0.1:${port}/qpmaster/2`);
      await store.set("k", "via sentinel");
      expect(await store.incr("n", 2)).toBe(2);
      expect(master.cli("-n", "2", "get", "k")).toBe("via sentinel");
    } finally {
      await sentinel.stop(2000);
      await master.stop();
    }
  }, 30_000);
});
