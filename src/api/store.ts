/**
 * Key/value state that outlives a connection (greylisting, karma): plugins get it from
 * `this.store()`. The embedded backend is SQLite in `db_dir`.
 *
 * ```ts
 * const store = this.store();
 * const seen = await store.get(`seen|${ip}`);
 * await store.set(`seen|${ip}`, "1", 3600); // forgotten after an hour
 * ```
 * @module
 */
export interface Store {
  get(key: string): Promise<string | undefined>;
  /** Sets a value, expiring after `ttlSeconds` (none = never). */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix` (for tools and tests). */
  keys(prefix: string): Promise<string[]>;
}
