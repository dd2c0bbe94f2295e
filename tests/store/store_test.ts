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
