/**
 * Which store `this.store()` is: the `store` config file's value (see redis_url.ts) picks the
 * backend for every plugin. SQLite (the default) is one file per directory (`db_dir`); a Redis
 * URL is one shared store per URL, whatever directory a plugin asked for, so a plugin's
 * `db_dir` argument cannot split a fleet's state.
 * @module
 */
import { LOGERROR } from "../api/codes.ts";
import type { Store } from "../api/store.ts";
import { RedisStore } from "./redis.ts";
import type { Log } from "./redis_link.ts";
import { parseStoreSpec } from "./redis_url.ts";
import { storeIn } from "./store.ts";

const shared = new Map<string, Store>();

/**
 * The store for `dir` under the `store` file's value `url` (undefined or `sqlite`: SQLite in
 * `dir`). One per URL for the whole process; the first caller's clock and log are kept.
 */
export function openStore(dir: string, now: () => number, url?: string, log: Log = () => undefined): Store {
  if (url === undefined || url.trim() === "" || url.trim() === "sqlite") return storeIn(dir, now);
  const key = url.trim();
  let s = shared.get(key);
  if (!s) {
    try {
      const spec = parseStoreSpec(key);
      s = spec.kind === "redis" ? new RedisStore(spec, { now, log }) : storeIn(dir, now);
    } catch (e) {
      // A broken `store` file must not become a silent local store: every operation fails, so
      // each plugin applies its failure policy, and `qpsmtpd check` shows why.
      log(LOGERROR, (e as Error).message);
      s = brokenStore((e as Error).message);
    }
    shared.set(key, s);
  }
  return s;
}

/** Closes the shared stores (tests, and a process that is done). */
export function closeStores(): void {
  for (const s of shared.values()) if (s instanceof RedisStore) s.close();
  shared.clear();
}

function brokenStore(why: string): Store {
  const fail = (): Promise<never> => Promise.reject(new Error(why));
  return {
    location: "(invalid store file)",
    get: fail,
    set: fail,
    compareAndSet: fail,
    delete: fail,
    keys: fail,
    incr: fail,
    hit: fail,
    ping: fail,
  };
}
