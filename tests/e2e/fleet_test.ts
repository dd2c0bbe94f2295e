/**
 * Two daemons, one Redis, one MX: two dist/qpsmtpd processes on two ports share a real
 * redis-server through the `store` file. A triplet greylisted on A passes on B after the delay;
 * a rate limit counts across both; Redis killed mid-test (both fail open, with a warning) and
 * started again (both enforce again, by themselves); `qpsmtpd check` reports a dead store; and
 * the Cluster form against a real three-master cluster.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from "../helpers/redis.ts";
import { BINARY, configDir, type Daemon, RawClient, run, startDaemon } from "./helpers.ts";

const PLUGINS = [
  "greylisting recipient 1 black_timeout 2",
  "limit",
  "rcpt_ok",
  "queue/discard",
].join("\n");
const LIMITS = ["messages sender 3/1m", "messages sender 0 grey@example.com"].join("\n");

function fleetConfig(store: string): string {
  return configDir({
    plugins: `${PLUGINS}\n`,
    limit: `${LIMITS}\n`,
    store: `${store}\n`,
    rcpthosts: "example.org\n",
    me: "mx.example.org\n",
  });
}

/** A client that has said EHLO to `d`. */
async function client(d: Daemon): Promise<RawClient> {
  // A refused connect is tried again for a while: seen once right after start-up, rarely, with
  // nothing on the daemon's stderr (waitForPort may have met a port in the ephemeral range).
  let c: RawClient | undefined;
  for (let tries = 0; !c; tries++) {
    c = await RawClient.connect(d.port).catch(async (e) => {
      if (tries >= 30 || d.proc.exitCode !== null) {
        throw new Error(`${(e as Error).message} (exit code ${d.proc.exitCode}); the daemon's stderr:\n${d.stderr()}`);
      }
      await Bun.sleep(100);
      return undefined;
    });
  }
  expect((await c.reply()).code).toBe(220);
  expect((await c.command("EHLO client.example")).code).toBe(250);
  return c;
}

/** One RCPT's answer in a new transaction (greylisting keys on the recipient). */
async function rcpt(c: RawClient, to: string): Promise<number> {
  await c.command("RSET");
  expect((await c.command("MAIL FROM:<grey@example.com>")).code).toBe(250);
  return (await c.command(`RCPT TO:<${to}>`)).code;
}

/** One MAIL's answer from the rate-limited sender. */
async function mail(c: RawClient): Promise<number> {
  await c.command("RSET");
  return (await c.command("MAIL FROM:<rate@example.com>")).code;
}

/** SIGTERM, and SIGKILL when it is still there after 5 s. */
async function stop(d: Daemon | undefined): Promise<void> {
  if (!d) return;
  const t = setTimeout(() => d.proc.kill("SIGKILL"), 5000);
  await d.stop();
  clearTimeout(t);
}

async function eventually(what: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("not in time");
    await Bun.sleep(100);
  }
}

describe("a fleet on one Redis", () => {
  let redis: RedisServer;
  let a: Daemon;
  let b: Daemon;
  beforeAll(async () => {
    redis = await startRedis();
    const config = fleetConfig(redis.url);
    [a, b] = await Promise.all([startDaemon(config), startDaemon(config)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([stop(a), stop(b)]);
    await redis?.stop();
  }, 20_000);

  test("a triplet greylisted on A is too early on B, then passes on B after black_timeout", async () => {
    const [ca, cb] = await Promise.all([client(a), client(b)]);
    expect(await rcpt(ca, "one@example.org")).toBe(450);
    expect(await rcpt(cb, "one@example.org")).toBe(450);
    await Bun.sleep(2100);
    expect(await rcpt(cb, "one@example.org")).toBe(250);
    expect(await rcpt(ca, "one@example.org")).toBe(250); // white now, on every host
    expect(redis.cli("--scan", "--pattern", "grey|*")).toContain("grey|127.0.0.1|one@example.org");
    ca.close();
    cb.close();
  }, 20_000);

  test("a rate limit counts across both daemons", async () => {
    const [ca, cb] = await Promise.all([client(a), client(b)]);
    expect(await mail(ca)).toBe(250);
    expect(await mail(cb)).toBe(250);
    expect(await mail(ca)).toBe(250);
    expect(await mail(cb)).toBe(450);
    const refused = await ca.command("MAIL FROM:<rate@example.com>");
    expect(refused.text).toContain("Message rate limit exceeded for this sender, try again later");
    ca.close();
    cb.close();
  });

  test("Redis killed: both fail open with a warning; started again: both enforce again by themselves", async () => {
    await redis.kill();
    const [ca, cb] = await Promise.all([client(a), client(b)]);
    try {
      const t0 = performance.now();
      expect(await rcpt(ca, "two@example.org")).toBe(250); // new triplet, ungreylisted
      expect(await mail(cb)).toBe(250); // over the limit, not counted
      expect(performance.now() - t0).toBeLessThan(3000);
      for (const d of [a, b]) {
        await eventually(() => Promise.resolve(/store: redis:\/\/.* (lost|unreachable)/.test(d.stderr())));
        // The daemon's stderr is read through a pipe: the warning may arrive after the replies did.
        const warning = /store failed \(.*\): (letting mail through ungreylisted|not counting, letting the client through)/;
        await eventually(() => Promise.resolve(warning.test(d.stderr())));
        expect(d.stderr()).toMatch(warning);
      }
    } finally {
      ca.close();
      cb.close();
      await redis.restart();
    }
    await eventually(async () => {
      const c = await client(a);
      const code = await rcpt(c, "three@example.org");
      c.close();
      return code === 450;
    });
    await eventually(async () => {
      const c = await client(b);
      const code = await rcpt(c, "four@example.org");
      c.close();
      return code === 450;
    });
    for (const d of [a, b]) await eventually(() => Promise.resolve(/store: redis:\/\/.* reachable again after/.test(d.stderr())));
  }, 40_000);

  test("qpsmtpd check reports a store that does not answer (a warning, not a failure)", async () => {
    const dead = fleetConfig("redis://127.0.0.1:1/0?timeout=300");
    const r = await run([BINARY, "check", "--config", dead]);
    expect(r.out).toMatch(/greylisting: store redis:\/\/127\.0\.0\.1:1\/0\?timeout=300 does not answer/);
    expect(r.out).toMatch(/limit: store redis:\/\/127\.0\.0\.1:1\/0\?timeout=300 does not answer/);
    const alive = await run([BINARY, "check", "--config", fleetConfig(redis.url)]);
    expect(alive.out).not.toContain("does not answer");
  });
});

describe("a fleet on a Redis Cluster", () => {
  let cluster: RedisCluster;
  let a: Daemon;
  let b: Daemon;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    // A patient time limit: workers of a daemon that just started connect to three nodes each.
    const config = fleetConfig(`${cluster.url}?timeout=3000`);
    [a, b] = await Promise.all([startDaemon(config), startDaemon(config)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([stop(a), stop(b)]);
    await cluster?.stop();
  }, 20_000);

  test("greylisted on A, passes on B after the delay; the rate counts across both", async () => {
    const [ca, cb] = await Promise.all([client(a), client(b)]);
    for (const to of ["c1@example.org", "c2@example.org", "c3@example.org"]) expect(await rcpt(ca, to)).toBe(450);
    await Bun.sleep(2100);
    for (const to of ["c1@example.org", "c2@example.org", "c3@example.org"]) expect(await rcpt(cb, to)).toBe(250);
    expect([await mail(ca), await mail(cb), await mail(ca), await mail(cb)]).toEqual([250, 250, 250, 450]);
    ca.close();
    cb.close();
  }, 20_000);
});
