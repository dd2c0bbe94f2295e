/**
 * When to start a worker again after it died: at once after a worker that lived a while, then
 * doubling while each new one dies young, so a worker that cannot start (a broken plugin, a
 * missing file) is retried at most every `maxMs`, not in a loop.
 * @module
 */

export interface BackoffOptions {
  /** A worker that lived less than this died young. @default 10000 */
  readonly youngMs?: number;
  /** The first delay after a young death. @default 250 */
  readonly firstMs?: number;
  /** The longest delay. @default 30000 */
  readonly maxMs?: number;
}

/** One per worker slot. */
export class Backoff {
  readonly #young: number;
  readonly #first: number;
  readonly #max: number;
  /** Young deaths in a row. */
  #streak = 0;

  constructor(o: BackoffOptions = {}) {
    this.#young = o.youngMs ?? 10_000;
    this.#first = o.firstMs ?? 250;
    this.#max = o.maxMs ?? 30_000;
  }

  /** The delay before the next start, for a worker that lived `livedMs`. */
  next(livedMs: number): number {
    if (livedMs >= this.#young) {
      this.#streak = 0;
      return 0;
    }
    this.#streak++;
    return Math.min(this.#max, this.#first * 2 ** (this.#streak - 1));
  }

  /** Young deaths in a row. */
  get streak(): number {
    return this.#streak;
  }
}
