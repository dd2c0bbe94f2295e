/**
 * A clock a test moves by hand, so timeouts (commands, DATA, plugin time limits) are tested
 * without waiting.
 *
 * ```ts
 * const clock = new FakeClock();
 * const t = await TestSession.start({ clock, plugins: ["my_plugin"] });
 * await clock.advance(30_000);   // fires every timer due in the next 30 seconds, in order
 * ```
 * @module
 */

interface Pending {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class FakeClock {
  #now: number;
  #seq = 0;
  #timers: Pending[] = [];

  /** @param start the epoch milliseconds it starts at (default: the real time now) */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): { cancel(): void } {
    const t: Pending = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => (t.cancelled = true) };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due, earliest first, and letting
   * the work it starts run before the next one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const next = this.#timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.#now = Math.max(this.#now, next.due);
      next.cancelled = true;
      next.fn();
      await settle();
    }
    this.#now = end;
  }
}

/** Lets promise chains and I/O callbacks that are already due run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
