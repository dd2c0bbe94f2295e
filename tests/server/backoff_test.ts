/** Replacing dead workers (src/server/backoff.ts): at once after a long life, doubling while they die young. */
import { expect, test } from "bun:test";
import { Backoff } from "../../src/server/backoff.ts";

test("a worker that lived is replaced at once; young deaths double the wait up to the cap; a long life resets it", () => {
  const b = new Backoff({ youngMs: 10_000, firstMs: 250, maxMs: 2_000 });
  expect(b.next(60_000)).toBe(0);
  expect([b.next(50), b.next(50), b.next(50), b.next(50), b.next(50)]).toEqual([250, 500, 1000, 2000, 2000]);
  expect(b.streak).toBe(5);
  expect(b.next(10_000)).toBe(0);
  expect(b.streak).toBe(0);
  expect(b.next(9_999)).toBe(250);
});
