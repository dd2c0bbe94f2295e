/** The embedded SQLite store behind `this.store()`: expiry on its clock, keys by prefix, one per directory. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
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

describe("SqliteStore, the operations of one turn committed together", () => {
  test("they run in the order asked, each sees the ones before it, and another connection sees them all at once, after the turn", async () => {
    const path = join(dbDir(), "x.sqlite");
    const s = new SqliteStore(path);
    const other = new DatabaseSync(path);
    const read = (k: string) => (other.prepare("SELECT v FROM kv WHERE k = ?").get(k) as { v: string } | undefined)?.v;
    const asked = [s.set("a", "1"), s.incr("a"), s.get("a"), s.incr("n"), s.incr("n"), s.compareAndSet("c", undefined, "x")];
    expect(read("a")).toBeUndefined(); // nothing before the end of the turn
    expect(await Promise.all(asked)).toEqual([undefined, 2, "2", 1, 2, true]);
    expect([read("a"), read("n"), read("c")]).toEqual(["2", "2", "x"]);
    other.close();
    s.close();
  });

  test("one that fails is undone alone: the others of its turn stand, and only its caller hears", async () => {
    const s = new SqliteStore(join(dbDir(), "x.sqlite"));
    const asked = [
      s.set("word", "text"),
      s.incr("word"), // not an integer: refused
      s.set("bad", null as unknown as string), // NOT NULL: SQLite refuses the row
      s.set("after", "kept"),
      s.hit("h", 60),
    ];
    const settled = await Promise.allSettled(asked);
    expect(settled.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled", "fulfilled"]);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toContain("does not hold an integer");
    expect([await s.get("word"), await s.get("bad"), await s.get("after"), await s.hit("h", 60, { weight: 0 })]).toEqual([
      "text",
      undefined,
      "kept",
      1,
    ]);
    // Alone in its turn, the same.
    await expect(s.set("bad", null as unknown as string)).rejects.toThrow();
    await expect(s.incr("word")).rejects.toThrow("does not hold an integer");
    expect([await s.get("bad"), await s.get("word"), await s.incr("n")]).toEqual([undefined, "text", 1]);
    s.close();
  });

  test("a file another process keeps locked past busy_timeout: that turn's writes fail, its reads are answered; the next turn goes through", async () => {
    const path = join(dbDir(), "x.sqlite");
    const s = new SqliteStore(path);
    await s.set("k", "before");
    const other = new DatabaseSync(path);
    other.exec("BEGIN IMMEDIATE");
    const started = Date.now();
    const blocked = await Promise.allSettled([s.set("k", "during"), s.get("k")]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // busy_timeout is 2 s
    expect(blocked.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    expect(String((blocked[0] as PromiseRejectedResult).reason)).toMatch(/locked|busy/i);
    expect((blocked[1] as PromiseFulfilledResult<string>).value).toBe("before");
    other.exec("COMMIT");
    other.close();
    await s.set("k", "after");
    expect(await s.get("k")).toBe("after");
    s.close();
  });

  test("close() runs what is waiting first", async () => {
    const path = join(dbDir(), "x.sqlite");
    const s = new SqliteStore(path);
    const done = s.set("k", "v");
    s.close();
    await done;
    const again = new SqliteStore(path);
    expect(await again.get("k")).toBe("v");
    again.close();
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

describe("SqliteStore, a database from before hit_events", () => {
  test("its hits move over once, same-millisecond events summed; counts and expiry as before", async () => {
    const path = join(dbDir(), "old.sqlite");
    // The earlier schema: a row per event, an index on (k, t), the totals beside them.
    const old = new DatabaseSync(path);
    old.exec("CREATE TABLE hits (k TEXT NOT NULL, t INTEGER NOT NULL, e INTEGER NOT NULL, w INTEGER NOT NULL)");
    old.exec("CREATE INDEX hits_k_t ON hits (k, t)");
    old.exec("CREATE TABLE hit_totals (k TEXT PRIMARY KEY, n INTEGER NOT NULL)");
    const add = old.prepare("INSERT INTO hits (k, t, e, w) VALUES (?, ?, ?, ?)");
    add.run("rate", 1_000_000, 1_060_000, 1);
    add.run("rate", 1_000_000, 1_060_000, 2); // the same millisecond
    add.run("rate", 1_030_000, 1_090_000, 1);
    old.prepare("INSERT INTO hit_totals (k, n) VALUES (?, ?)").run("rate", 4);
    old.close();

    let now = 1_040_000;
    const s = new SqliteStore(path, { now: () => now });
    expect(await s.hit("rate", 60, { weight: 0 })).toBe(4);
    expect(await s.keys("ra")).toEqual(["rate"]);
    now = 1_060_000; // the first millisecond's three leave together
    expect(await s.hit("rate", 60)).toBe(2);
    s.close();

    const check = new DatabaseSync(path);
    const tables = (check.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>)
      .map((r) => r.name);
    expect(tables).toEqual(["hit_events", "hit_totals", "kv"]);
    expect(check.prepare("SELECT t, w FROM hit_events WHERE k = 'rate' ORDER BY t").all()).toEqual([
      { t: 1_030_000, w: 1 },
      { t: 1_060_000, w: 1 },
    ]);
    check.close();
    // Opened again: nothing left to move, the counts unchanged.
    const again = new SqliteStore(path, { now: () => now });
    expect(await again.hit("rate", 60, { weight: 0 })).toBe(2);
    again.close();
  });

  test("events of one key in one millisecond are one row, their weights summed", async () => {
    const path = join(dbDir(), "burst.sqlite");
    let now = 5_000_000;
    const s = new SqliteStore(path, { now: () => now });
    for (let i = 0; i < 5; i++) await s.hit("b", 10);
    await s.hit("b", 10, { weight: 3 });
    now += 1;
    expect(await s.hit("b", 10)).toBe(9);
    s.close();
    const check = new DatabaseSync(path);
    expect(check.prepare("SELECT t, w FROM hit_events WHERE k = 'b' ORDER BY t").all()).toEqual([
      { t: 5_000_000, w: 8 },
      { t: 5_000_001, w: 1 },
    ]);
    check.close();
  });
});
