/**
 * Counts of events in the last minute and the last hour, in fixed memory: one slot a second for
 * the minute, one a minute for the hour.
 * @module
 */

export class EventWindow {
  readonly #seconds = new Array<number>(60).fill(0);
  readonly #minutes = new Array<number>(60).fill(0);
  #second = 0;
  #minute = 0;

  /** Counts `n` events at `now` (epoch ms; never earlier than the last call). */
  add(now: number, n = 1): void {
    this.#advance(now);
    this.#seconds[this.#second % 60]! += n;
    this.#minutes[this.#minute % 60]! += n;
  }

  /** Events in the 60 seconds up to `now`. */
  lastMinute(now: number): number {
    this.#advance(now);
    return this.#seconds.reduce((a, b) => a + b, 0);
  }

  /** Events in the 60 minutes up to `now`. */
  lastHour(now: number): number {
    this.#advance(now);
    return this.#minutes.reduce((a, b) => a + b, 0);
  }

  #advance(now: number): void {
    const s = Math.floor(now / 1000);
    const m = Math.floor(now / 60000);
    if (this.#second === 0) this.#second = s;
    if (this.#minute === 0) this.#minute = m;
    for (let i = this.#second + 1; i <= Math.min(s, this.#second + 60); i++) this.#seconds[i % 60] = 0;
    for (let i = this.#minute + 1; i <= Math.min(m, this.#minute + 60); i++) this.#minutes[i % 60] = 0;
    this.#second = Math.max(this.#second, s);
    this.#minute = Math.max(this.#minute, m);
  }
}
