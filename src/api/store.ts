/**
 * Key/value state that outlives a connection (greylisting, karma, rate limits): plugins get it
 * from `this.store()`. Two backends implement it: SQLite in `db_dir` (the default, one host) and
 * Redis (the `store` config file: `redis://host:6379/0`, shared by every host of a fleet).
 *
 * Every operation is atomic on both backends, so two daemons sharing one store never lose an
 * update. Every operation can fail: a Redis that is down, refuses or does not answer within the
 * store's time limit makes the promise reject (it never hangs). A plugin decides what a failure
 * means for mail (fail open with a warning, or defer), and says so in its doc block.
 *
 * Values are strings; a key belongs to one kind of operation: `get`/`set`/`compareAndSet`
 * values, `incr` counters (also readable with `get`), or `hit` windows (only `hit` and
 * `delete`). Start keys with your plugin's name. Times are the server's clock
 * (`this.server.now()`), except that Redis expires keys on its own clock.
 *
 * ```ts
 * const store = this.store();
 * const seen = await store.get(`seen|${ip}`);
 * await store.set(`seen|${ip}`, "1", 3600); // forgotten after an hour
 * ```
 * @module
 */
export interface Store {
  /** Where the data lives, for log lines and `qpsmtpd check`: a file, or a URL without password. */
  readonly location: string;

  /** The value, or undefined when there is none (or it expired). */
  get(key: string): Promise<string | undefined>;

  /**
   * Sets a value, expiring `ttlSeconds` from now (fractions allowed; none = never).
   *
   * ```ts
   * await store.set(`my_plugin|${ip}`, JSON.stringify({ first: this.server.now() }), 86400);
   * ```
   */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;

  /**
   * Sets `value` only if the current value is `expected` (`undefined`: only if there is none);
   * true when it did. For records several hosts update: read, change, write back, and start
   * again when someone else wrote in between.
   *
   * ```ts
   * for (let tries = 0; tries < 5; tries++) {
   *   const old = await store.get(key);
   *   const n = old === undefined ? { visits: 0 } : JSON.parse(old);
   *   n.visits++;
   *   if (await store.compareAndSet(key, old, JSON.stringify(n), 30 * 86400)) break;
   * }
   * // only the first of two hosts asking at once gets true:
   * const first = await store.compareAndSet(`grey|${triplet}`, undefined, String(this.server.now()), 3600);
   * ```
   */
  compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds?: number): Promise<boolean>;

  /** Removes a key of any kind. */
  delete(key: string): Promise<void>;

  /** The live keys starting with `prefix`, of every kind (for tools and tests: it reads them all). */
  keys(prefix: string): Promise<string[]>;

  /**
   * Adds `by` (default 1; negative to take away) to the integer counter at `key`, a missing key
   * counting as 0, and returns the new value. With `ttlSeconds` the key expires that long after
   * this call (each call renews it); without, its expiry stays as it was. Rejects when the value
   * is not an integer.
   *
   * ```ts
   * // connections open from an address, across every host; forgotten 10 minutes after the last change
   * const open = await store.incr(`my_plugin|open|${ip}`, 1, 600);
   * // ... and at disconnect:
   * await store.incr(`my_plugin|open|${ip}`, -1, 600);
   * ```
   */
  incr(key: string, by?: number, ttlSeconds?: number): Promise<number>;

  /**
   * A sliding-window counter: records `weight` events (default 1) now at `key` and returns how
   * many events the last `windowSeconds` hold, this one included. With `limit`, events that would
   * take the count above `limit` are not recorded (the count is still returned, so a result above
   * `limit` means "refused"): a client that keeps trying gets in again once its old events leave
   * the window. `weight: 0` only reads. The window is exact: each event is kept until it leaves,
   * so a window holds at most `limit` events, or without a limit as many as happen in it (mind
   * the memory of a busy key); a hit costs O(log n + weight).
   *
   * ```ts
   * // at most 30 messages per minute from an address
   * const n = await store.hit(`my_plugin|msg|${ip}`, 60, { limit: 30 });
   * if (n > 30) return [DENYSOFT, "too many messages, slow down"];
   * ```
   */
  hit(key: string, windowSeconds: number, options?: { readonly weight?: number; readonly limit?: number }): Promise<number>;

  /** Resolves when the backend answers (within the store's time limit); for `check()` exports. */
  ping(): Promise<void>;
}
