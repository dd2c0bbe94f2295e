/**
 * Batches IPC messages: what is posted within `delayMs` goes as one message (an array), in
 * order; an urgent post sends the batch at once. Under load the session reports of many
 * connections share one IPC message, so the channel's cost per connection falls as they come faster.
 * @module
 */

/** How long a report may wait for others to share its IPC message. */
export const BATCH_MS = 5;

export class Outbox<M> {
  readonly #write: (batch: M[]) => void;
  readonly #delayMs: number;
  #queue: M[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(write: (batch: M[]) => void, delayMs = BATCH_MS) {
    this.#write = write;
    this.#delayMs = delayMs;
  }

  post(m: M, urgent = false): void {
    this.#queue.push(m);
    if (urgent) this.flush();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.flush(), this.#delayMs);
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#write(batch);
  }
}
