/**
 * A small test runner for plugin authors, embedded in the binary: `describe`, `test`, `expect`
 * and the hooks around tests, run by `qpsmtpd test FILE...`.
 *
 * ```ts
 * import { expect, test, TestSession } from "qpsmtpd/testing";
 * test("refuses bob", async () => {
 *   const t = await TestSession.start({ modules: { deny_bob }, plugins: ["deny_bob"] });
 *   ...
 *   expect(reply.code).toBe(550);
 * });
 * ```
 * @module
 */
import { inspect, isDeepStrictEqual } from "node:util";

type Fn = () => void | Promise<void>;

interface Case {
  readonly name: string;
  readonly fn: Fn;
  readonly skip: boolean;
}

interface Suite {
  readonly name: string;
  readonly cases: Array<Case | Suite>;
  readonly beforeAll: Fn[];
  readonly afterAll: Fn[];
  readonly beforeEach: Fn[];
  readonly afterEach: Fn[];
}

function suite(name: string): Suite {
  return { name, cases: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] };
}

let root = suite("");
let current = root;

/** Groups tests; hooks declared inside apply to its tests only. */
export function describe(name: string, fn: () => void): void {
  const s = suite(name);
  current.cases.push(s);
  const parent = current;
  current = s;
  try {
    fn();
  } finally {
    current = parent;
  }
}

/** Declares a test; it runs when `qpsmtpd test` runs the file. */
export function test(name: string, fn: Fn): void {
  current.cases.push({ name, fn, skip: false });
}
test.skip = (name: string, fn: Fn): void => {
  current.cases.push({ name, fn, skip: true });
};
export const it = test;

export function beforeAll(fn: Fn): void {
  current.beforeAll.push(fn);
}
export function afterAll(fn: Fn): void {
  current.afterAll.push(fn);
}
export function beforeEach(fn: Fn): void {
  current.beforeEach.push(fn);
}
export function afterEach(fn: Fn): void {
  current.afterEach.push(fn);
}

/** A failed expectation. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

const show = (x: unknown): string => inspect(x, { depth: 4, breakLength: Infinity });

export interface Matchers {
  /** The negated matchers. */
  readonly not: Matchers;
  /** `Object.is` equality. */
  toBe(expected: unknown): void;
  /** Deep equality. */
  toEqual(expected: unknown): void;
  toBeUndefined(): void;
  toBeDefined(): void;
  toBeTruthy(): void;
  toBeFalsy(): void;
  toBeGreaterThan(n: number): void;
  toBeGreaterThanOrEqual(n: number): void;
  toBeLessThan(n: number): void;
  toBeLessThanOrEqual(n: number): void;
  /** A string containing the text, or an array (or other iterable) containing the item. */
  toContain(item: unknown): void;
  toMatch(pattern: RegExp | string): void;
  toHaveLength(n: number): void;
  toBeInstanceOf(type: abstract new (...args: never[]) => unknown): void;
  /** The value is a function that throws (an error whose message matches, when given). */
  toThrow(message?: RegExp | string): void;
}

/** Expectations about `actual`; each matcher throws an AssertionError when it does not hold. */
export function expect(actual: unknown): Matchers {
  return matchers(actual, false);
}

function matchers(actual: unknown, negated: boolean): Matchers {
  const check = (ok: boolean, what: string): void => {
    if (ok === negated) throw new AssertionError(`expected ${show(actual)} ${negated ? "not " : ""}${what}`);
  };
  return {
    get not() {
      return matchers(actual, !negated);
    },
    toBe: (e) => check(Object.is(actual, e), `to be ${show(e)}`),
    toEqual: (e) => check(isDeepStrictEqual(actual, e), `to equal ${show(e)}`),
    toBeUndefined: () => check(actual === undefined, "to be undefined"),
    toBeDefined: () => check(actual !== undefined, "to be defined"),
    toBeTruthy: () => check(!!actual, "to be truthy"),
    toBeFalsy: () => check(!actual, "to be falsy"),
    toBeGreaterThan: (n) => check((actual as number) > n, `to be greater than ${n}`),
    toBeGreaterThanOrEqual: (n) => check((actual as number) >= n, `to be at least ${n}`),
    toBeLessThan: (n) => check((actual as number) < n, `to be less than ${n}`),
    toBeLessThanOrEqual: (n) => check((actual as number) <= n, `to be at most ${n}`),
    toContain: (item) =>
      check(
        typeof actual === "string"
          ? actual.includes(String(item))
          : [...(actual as Iterable<unknown>)].some((x) => isDeepStrictEqual(x, item)),
        `to contain ${show(item)}`,
      ),
    toMatch: (p) =>
      check(typeof actual === "string" && (typeof p === "string" ? actual.includes(p) : p.test(actual)), `to match ${show(p)}`),
    toHaveLength: (n) => check((actual as { length?: number })?.length === n, `to have length ${n}`),
    toBeInstanceOf: (t) => check(actual instanceof t, `to be an instance of ${t.name}`),
    toThrow: (m) => {
      let thrown: unknown;
      let threw = false;
      try {
        (actual as () => unknown)();
      } catch (e) {
        threw = true;
        thrown = e;
      }
      const text = thrown instanceof Error ? thrown.message : String(thrown);
      const fits = threw && (m === undefined || (typeof m === "string" ? text.includes(m) : m.test(text)));
      check(fits, `to throw${m === undefined ? "" : ` ${show(m)}`}`);
    },
  };
}

export interface RunResult {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

/**
 * Runs every test declared so far, printing one line per test and a summary, then forgets them.
 * `write` receives the output.
 */
export async function runTests(write: (line: string) => void): Promise<RunResult> {
  const top = root;
  root = current = suite("");
  const result = { passed: 0, failed: 0, skipped: 0 };
  await runSuite(top, [], [], [], write, result);
  write(`${result.passed} passed, ${result.failed} failed${result.skipped ? `, ${result.skipped} skipped` : ""}`);
  return result;
}

async function runSuite(
  s: Suite,
  path: string[],
  before: Fn[],
  after: Fn[],
  write: (l: string) => void,
  r: { passed: number; failed: number; skipped: number },
): Promise<void> {
  const names = s.name ? [...path, s.name] : path;
  const each = [...before, ...s.beforeEach];
  const eachAfter = [...s.afterEach, ...after];
  try {
    for (const f of s.beforeAll) await f();
  } catch (e) {
    r.failed++;
    write(`FAIL ${[...names, "(beforeAll)"].join(" > ")}\n  ${describeError(e)}`);
    return;
  }
  for (const c of s.cases) {
    if ("cases" in c) {
      await runSuite(c, names, each, eachAfter, write, r);
      continue;
    }
    const title = [...names, c.name].join(" > ");
    if (c.skip) {
      r.skipped++;
      write(`skip ${title}`);
      continue;
    }
    try {
      for (const f of each) await f();
      await c.fn();
      for (const f of eachAfter) await f();
      r.passed++;
      write(`ok   ${title}`);
    } catch (e) {
      r.failed++;
      write(`FAIL ${title}\n  ${describeError(e)}`);
    }
  }
  for (const f of s.afterAll) {
    try {
      await f();
    } catch (e) {
      r.failed++;
      write(`FAIL ${[...names, "(afterAll)"].join(" > ")}\n  ${describeError(e)}`);
    }
  }
}

function describeError(e: unknown): string {
  if (e instanceof AssertionError) return e.message;
  return e instanceof Error ? e.stack ?? e.message : String(e);
}
