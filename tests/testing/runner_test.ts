/** The embedded test runner behind `qpsmtpd test`: describe, test, expect, hooks, the summary. */
import { describe, expect, test } from "bun:test";
import * as runner from "../../src/testing/runner.ts";

describe("runTests", () => {
  test("runs what was declared, in order, with hooks, and counts passes, failures and skips", async () => {
    const order: string[] = [];
    runner.beforeAll(() => void order.push("beforeAll"));
    runner.describe("group", () => {
      runner.beforeEach(() => void order.push("beforeEach"));
      runner.afterEach(() => void order.push("afterEach"));
      runner.test("passes", () => {
        order.push("passes");
        runner.expect([1, { a: 2 }]).toEqual([1, { a: 2 }]);
        runner.expect("abc").toContain("b");
        runner.expect([1, 2]).toContain(2);
        runner.expect(3).not.toBe(4);
        runner.expect(() => {
          throw new Error("boom here");
        }).toThrow(/boom/);
        runner.expect(undefined).toBeUndefined();
        runner.expect("x".repeat(3)).toHaveLength(3);
      });
      runner.test("fails", async () => {
        order.push("fails");
        runner.expect(await Promise.resolve(550)).toBe(250);
      });
      runner.test.skip("skipped", () => void order.push("skipped"));
    });
    runner.afterAll(() => void order.push("afterAll"));
    const out: string[] = [];
    const r = await runner.runTests((l) => out.push(l));
    expect(r).toEqual({ passed: 1, failed: 1, skipped: 1 });
    expect(order).toEqual(["beforeAll", "beforeEach", "passes", "afterEach", "beforeEach", "fails", "afterAll"]);
    expect(out).toContain("ok   group > passes");
    expect(out).toContain("FAIL group > fails\n  expected 550 to be 250");
    expect(out.at(-1)).toBe("1 passed, 1 failed, 1 skipped");
    // The declared tests are forgotten once run.
    expect(await runner.runTests(() => undefined)).toEqual({ passed: 0, failed: 0, skipped: 0 });
  });

  test("each matcher fails when it should", () => {
    const fails = (f: () => void): boolean => {
      try {
        f();
        return false;
      } catch (e) {
        return e instanceof runner.AssertionError;
      }
    };
    expect(fails(() => runner.expect(1).toBe(2))).toBe(true);
    expect(fails(() => runner.expect({ a: 1 }).toEqual({ a: 2 }))).toBe(true);
    expect(fails(() => runner.expect("abc").toMatch(/z/))).toBe(true);
    expect(fails(() => runner.expect(() => undefined).toThrow())).toBe(true);
    expect(fails(() => runner.expect(1).not.toBe(1))).toBe(true);
    expect(fails(() => runner.expect(2).toBeGreaterThan(3))).toBe(true);
    expect(fails(() => runner.expect(null).toBeDefined())).toBe(false);
    expect(fails(() => runner.expect(undefined).toBeDefined())).toBe(true);
  });
});
