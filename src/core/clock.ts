/**
 * Time as the engine sees it: the wall clock in production, a clock a test moves by hand
 * (`FakeClock` in `qpsmtpd/testing`) so that timeouts are tested without waiting.
 * @module
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` once after `ms`; the timer does not keep the process alive. */
  after(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Sleeps `ms` on `clock`; resolves early (true) when `wake` is called first. */
export function sleep(clock: Clock, ms: number): { promise: Promise<boolean>; wake: () => void } {
  let wake!: () => void;
  const promise = new Promise<boolean>((resolve) => {
    const timer = clock.after(ms, () => resolve(false));
    wake = () => {
      timer.cancel();
      resolve(true);
    };
  });
  return { promise, wake };
}
