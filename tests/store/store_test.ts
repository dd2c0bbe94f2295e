/** The embedded SQLite store behind `this.store()`: expiry on its clock, keys by prefix, one per directory. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore, storeIn } from "../../src/store/store.ts";

const dbDir = (): string => mkdtempSync(join(tmpdir(), "qpdb-"));

describe("SqliteStore", () => {
  test("values expire; keys by prefix", async () => {
    let now = 1_000_000;
    const s = new SqliteStore(join(dbDir(), "x.sqlite"), { now: () => now });
    await s.set("a|1", "one");
    await s.set("a|2", "two", 0.05);
    await s.set("b|1", "three");
    expect(await s.get("a|1")).toBe("one");
    expect((await s.keys("a|")).sort()).toEqual(["a|1", "a|2"]);
    now += 49;
    expect(await s.get("a|2")).toBe("two");
    now += 2;
    expect(await s.get("a|2")).toBeUndefined();
    await s.delete("a|1");
    expect(await s.keys("a|")).toEqual([]);
    s.close();
  });

  test("storeIn gives one store per directory, kept across calls", async () => {
    const d = dbDir();
    expect(storeIn(d)).toBe(storeIn(d));
    await storeIn(d).set("k", "v");
    expect(await storeIn(d).get("k")).toBe("v");
    expect(storeIn(dbDir())).not.toBe(storeIn(d));
  });
});

describe("SqliteStore windows", () => {
  test("windows whose newest event left are pruned whole; live totals stay right", async () => {
    let now = 1_000_000;
    const s = new SqliteStore(join(dbDir(), "w.sqlite"), { now: () => now });
    await s.hit("old", 1);
    await s.hit("old", 1, { weight: 2 });
    await s.hit("live", 3600);
    now += 2000;
    await s.hit("live", 3600);
    for (let i = 0; i < 1000; i++) await s.set(`k${i}`, "v"); // every 1000 writes: a prune
    expect(await s.keys("old")).toEqual([]);
    expect(await s.hit("old", 1, { weight: 0 })).toBe(0);
    expect(await s.hit("live", 3600, { weight: 0 })).toBe(2);
    now += 3600_000 - 1000; // the first "live" event leaves, the second stays
    expect(await s.hit("live", 3600, { weight: 0 })).toBe(1);
    s.close();
  });
});
