import { describe, expect, test } from "bun:test";
import { EventWindow } from "../../src/metrics/window.ts";

describe("EventWindow", () => {
  test("counts the last minute and the last hour, forgetting what is older", () => {
    const w = new EventWindow();
    const t0 = Date.UTC(2026, 10, 29, 12, 0, 0);
    w.add(t0, 5);
    w.add(t0 + 30_000);
    expect([w.lastMinute(t0 + 30_000), w.lastHour(t0 + 30_000)]).toEqual([6, 6]);
    expect([w.lastMinute(t0 + 61_000), w.lastHour(t0 + 61_000)]).toEqual([1, 6]);
    expect([w.lastMinute(t0 + 91_000), w.lastHour(t0 + 91_000)]).toEqual([0, 6]);
    w.add(t0 + 30 * 60_000, 2);
    expect(w.lastHour(t0 + 59 * 60_000)).toBe(8);
    expect(w.lastHour(t0 + 61 * 60_000)).toBe(2);
    expect(w.lastHour(t0 + 5 * 3600_000)).toBe(0);
  });
});
