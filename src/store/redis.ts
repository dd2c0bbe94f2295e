/**
 * The shared store on Redis (one server, Sentinel or Cluster): what every host of a fleet sees.
 * Each operation is one command or one Lua script on one key, so it is atomic and, in a cluster,
 * goes to the key's own node. Values are Redis strings, counters Redis integers, sliding windows
 * sorted sets with one member per event (score: its time).
 *
 * Times: expiry is Redis's own (PX, PEXPIRE); the windows of `hit` use the server's clock, so
 * hosts should keep their clocks in step (NTP), as for any shared rate.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { Store } from "../api/store.ts";
import { type Log, RedisLink } from "./redis_link.ts";
import type { RedisSpec } from "./redis_url.ts";

/** A script, sent by its SHA1 and loaded on the first NOSCRIPT. */
interface Script {
  readonly text: string;
  readonly sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash("sha1").update(text).digest("hex") };
}

// ARGV: expect-absent ("1"/"0"), expected, value, ttl ms ("" = none)
const CAS = script(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then redis.call('SET', KEYS[1], ARGV[3]) else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
return 1`);

// ARGV: by, ttl ms ("" = keep)
const INCR = script(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`);

// ARGV: now ms, window ms, weight, limit (-1 = none), unique id. One member per event, so the
// count is ZCARD: O(log n) whatever the traffic; with a limit the set never holds more than it.
const HIT = script(`
local now, win, w, lim = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local n = redis.call('ZCARD', KEYS[1]) + w
if w > 0 and (lim < 0 or n <= lim) then
  for i = 1, w do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i) end
  redis.call('PEXPIRE', KEYS[1], win)
end
return n`);

const PROCESS_ID = randomBytes(6).toString("hex");
let sequence = 0;

export class RedisStore implements Store {
  readonly location: string;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #now: () => number;

  /** @param opts.now the clock of the sliding windows, epoch ms */
  constructor(spec: RedisSpec, opts: { now?: () => number; log?: Log } = {}) {
    this.location = spec.location;
    this.#prefix = spec.prefix;
    this.#now = opts.now ?? Date.now;
    this.#link = new RedisLink(spec, opts.log ?? (() => undefined));
  }

  /** Whether the connection is up now (no round trip). */
  get up(): boolean {
    return this.#link.up;
  }

  async get(key: string): Promise<string | undefined> {
    const k = this.#prefix + key;
    return (await this.#link.run((b) => b.send(k, ["GET", k])) as string | null) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const k = this.#prefix + key;
    const args = ttlSeconds === undefined ? ["SET", k, value] : ["SET", k, value, "PX", ms(ttlSeconds)];
    await this.#link.run((b) => b.send(k, args));
  }

  async compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds?: number): Promise<boolean> {
    const args = [expected === undefined ? "1" : "0", expected ?? "", value, ttlSeconds === undefined ? "" : ms(ttlSeconds)];
    return (await this.#eval(CAS, key, args)) === 1;
  }

  async delete(key: string): Promise<void> {
    const k = this.#prefix + key;
    await this.#link.run((b) => b.send(k, ["DEL", k]));
  }

  keys(prefix: string): Promise<string[]> {
    const match = `${this.#prefix}${prefix}`.replace(/[*?[\]\\]/g, "\\$&") + "*";
    return this.#link.run(async (b) => {
      const out = new Set<string>();
      for await (const k of b.scan(match)) out.add(k.slice(this.#prefix.length));
      return [...out];
    });
  }

  async incr(key: string, by = 1, ttlSeconds?: number): Promise<number> {
    if (!Number.isInteger(by)) throw new Error(`store: incr by ${by}: not an integer`);
    return Number(await this.#eval(INCR, key, [String(by), ttlSeconds === undefined ? "" : ms(ttlSeconds)]));
  }

  async hit(key: string, windowSeconds: number, options: { readonly weight?: number; readonly limit?: number } = {}): Promise<number> {
    const weight = options.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0) throw new Error(`store: hit weight ${weight}: not a whole number`);
    const args = [String(this.#now()), ms(windowSeconds), String(weight), String(options.limit ?? -1), `${PROCESS_ID}.${++sequence}`];
    return Number(await this.#eval(HIT, key, args));
  }

  async ping(): Promise<void> {
    await this.#link.run((b) => b.ping());
  }

  close(): void {
    this.#link.close();
  }

  #eval(s: Script, key: string, args: readonly string[]): Promise<unknown> {
    const k = this.#prefix + key;
    return this.#link.run(async (b) => {
      try {
        return await b.send(k, ["EVALSHA", s.sha, "1", k, ...args]);
      } catch (e) {
        if (!/^NOSCRIPT/.test((e as Error).message)) throw e;
        return await b.send(k, ["EVAL", s.text, "1", k, ...args]);
      }
    });
  }
}

/** Seconds to whole milliseconds, at least 1 (Redis refuses 0). */
const ms = (seconds: number): string => String(Math.max(1, Math.round(seconds * 1000)));
