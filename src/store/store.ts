/**
 * The embedded key/value store behind `this.store()`: SQLite through `node:sqlite` (Bun and Deno
 * both have it), one database file per directory, shared by every plugin generation. The
 * operations asked for in one turn of the event loop run together at its end, in the order asked,
 * in one `BEGIN IMMEDIATE` transaction (group commit): a commit (a WAL append and the file locks,
 * about 30 µs) is shared by every session's operations of that turn instead of paid by each. Each
 * write runs in a savepoint, so it stays atomic when several processes on one host share the
 * file, and one that fails is undone alone.
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import type { Store } from "../api/store.ts";

const INTEGER = /^-?\d+$/;
/** Events of a key in a millisecond that has a row already: added to it. */
const ADD_TO_ROW = "ON CONFLICT (k, t) DO UPDATE SET w = w + excluded.w, e = max(e, excluded.e)";

export class SqliteStore implements Store {
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #getRow: StatementSync;
  readonly #set: StatementSync;
  readonly #del: StatementSync;
  readonly #keys: StatementSync;
  readonly #prune: StatementSync;
  readonly #hitsLeaving: StatementSync;
  readonly #hitsTrim: StatementSync;
  readonly #hitsAdd: StatementSync;
  readonly #hitsDel: StatementSync;
  readonly #hitsPrune: StatementSync;
  readonly #total: StatementSync;
  readonly #totalSet: StatementSync;
  readonly #totalDel: StatementSync;
  readonly #totalsPrune: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  readonly #savepoint: StatementSync;
  readonly #release: StatementSync;
  readonly #rollbackTo: StatementSync;
  #writes = 0;
  readonly #now: () => number;
  /** Operations waiting for the end of this turn, in the order they were asked for. */
  #batch: Pending[] = [];

  /**
   * @param path a file (its directory is created, mode 0700) or ":memory:"
   * @param opts.now the clock for expiry, epoch ms (default Date.now)
   */
  constructor(path: string, opts: { now?: () => number } = {}) {
    this.location = path;
    this.#now = opts.now ?? Date.now;
    if (path !== ":memory:") fs.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000;");
    this.#db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, expires INTEGER)");
    // One row per key and millisecond of its `hit`s: `t` when they happened, `e` when they leave
    // their window, `w` their weight; and each window's total, so a hit reads only the rows leaving
    // the window, not all of them. Keyed by (k, t) without a rowid, a hit writes one B-tree page
    // where a row and an index on it wrote two, and a burst in one millisecond is one row
    // (make bench, greylisting, karma and limit on SQLite, bold profile: 2.7 -> 2.0 ms per message).
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS hit_events (k TEXT NOT NULL, t INTEGER NOT NULL, e INTEGER NOT NULL, w INTEGER NOT NULL, " +
        "PRIMARY KEY (k, t)) WITHOUT ROWID",
    );
    this.#db.exec("CREATE TABLE IF NOT EXISTS hit_totals (k TEXT PRIMARY KEY, n INTEGER NOT NULL)");
    this.#begin = this.#db.prepare("BEGIN IMMEDIATE");
    this.#commit = this.#db.prepare("COMMIT");
    this.#rollback = this.#db.prepare("ROLLBACK");
    this.#moveOldHits();
    const live = "(expires IS NULL OR expires > ?)";
    this.#get = this.#db.prepare(`SELECT v FROM kv WHERE k = ? AND ${live}`);
    this.#getRow = this.#db.prepare(`SELECT v, expires FROM kv WHERE k = ? AND ${live}`);
    this.#set = this.#db.prepare("INSERT OR REPLACE INTO kv (k, v, expires) VALUES (?, ?, ?)");
    this.#del = this.#db.prepare("DELETE FROM kv WHERE k = ?");
    this.#keys = this.#db.prepare(
      `SELECT k FROM kv WHERE k >= ?1 AND k < ?2 AND (expires IS NULL OR expires > ?3)
       UNION SELECT DISTINCT k FROM hit_events WHERE k >= ?1 AND k < ?2 AND e > ?3`,
    );
    this.#prune = this.#db.prepare("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?");
    this.#hitsLeaving = this.#db.prepare("SELECT coalesce(sum(w), 0) AS n FROM hit_events WHERE k = ? AND t <= ?");
    this.#hitsTrim = this.#db.prepare("DELETE FROM hit_events WHERE k = ? AND t <= ?");
    this.#hitsAdd = this.#db.prepare(
      `INSERT INTO hit_events (k, t, e, w) VALUES (?, ?, ?, ?) ${ADD_TO_ROW}`,
    );
    this.#hitsDel = this.#db.prepare("DELETE FROM hit_events WHERE k = ?");
    // Whole windows only (their newest event has left), so every total stays the sum of its rows.
    this.#hitsPrune = this.#db.prepare("DELETE FROM hit_events WHERE k IN (SELECT k FROM hit_events GROUP BY k HAVING max(e) <= ?)");
    this.#total = this.#db.prepare("SELECT n FROM hit_totals WHERE k = ?");
    this.#totalSet = this.#db.prepare("INSERT OR REPLACE INTO hit_totals (k, n) VALUES (?, ?)");
    this.#totalDel = this.#db.prepare("DELETE FROM hit_totals WHERE k = ?");
    this.#totalsPrune = this.#db.prepare("DELETE FROM hit_totals WHERE k NOT IN (SELECT DISTINCT k FROM hit_events)");
    this.#savepoint = this.#db.prepare("SAVEPOINT op");
    this.#release = this.#db.prepare("RELEASE op");
    this.#rollbackTo = this.#db.prepare("ROLLBACK TO op");
  }

  get(key: string): Promise<string | undefined> {
    return this.#later(false, () => (this.#get.get(key, this.#now()) as { v: string } | undefined)?.v);
  }

  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    return this.#later(true, () => {
      this.#set.run(key, value, this.#expiry(ttlSeconds));
      this.#wrote();
    });
  }

  compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds?: number): Promise<boolean> {
    return this.#later(true, () => {
      const cur = (this.#get.get(key, this.#now()) as { v: string } | undefined)?.v;
      if (cur !== expected) return false;
      this.#set.run(key, value, this.#expiry(ttlSeconds));
      this.#wrote();
      return true;
    });
  }

  delete(key: string): Promise<void> {
    return this.#later(true, () => {
      this.#del.run(key);
      this.#hitsDel.run(key);
      this.#totalDel.run(key);
    });
  }

  keys(prefix: string): Promise<string[]> {
    return this.#later(false, () => (this.#keys.all(prefix, `${prefix}\uffff`, this.#now()) as Array<{ k: string }>).map((r) => r.k));
  }

  incr(key: string, by = 1, ttlSeconds?: number): Promise<number> {
    if (!Number.isInteger(by)) return Promise.reject(new Error(`store: incr by ${by}: not an integer`));
    return this.#later(true, () => {
      const row = this.#getRow.get(key, this.#now()) as { v: string; expires: number | null } | undefined;
      if (row && !INTEGER.test(row.v)) throw new Error(`store: ${key} does not hold an integer`);
      const n = Number(row?.v ?? 0) + by;
      this.#set.run(key, String(n), ttlSeconds === undefined ? row?.expires ?? null : this.#expiry(ttlSeconds));
      this.#wrote();
      return n;
    });
  }

  hit(key: string, windowSeconds: number, options: { readonly weight?: number; readonly limit?: number } = {}): Promise<number> {
    const weight = options.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0) return Promise.reject(new Error(`store: hit weight ${weight}: not a whole number`));
    return this.#later(true, () => {
      const now = this.#now();
      const window = windowSeconds * 1000;
      const leaving = Number((this.#hitsLeaving.get(key, now - window) as { n: number }).n);
      if (leaving > 0) this.#hitsTrim.run(key, now - window);
      const total = Number((this.#total.get(key) as { n: number } | undefined)?.n ?? 0) - leaving;
      const n = total + weight;
      const record = weight > 0 && (options.limit === undefined || n <= options.limit);
      if (record) this.#hitsAdd.run(key, now, now + window, weight);
      if (record || leaving > 0) {
        if (total + (record ? weight : 0) === 0) this.#totalDel.run(key);
        else this.#totalSet.run(key, total + (record ? weight : 0));
        this.#wrote();
      }
      return n;
    });
  }

  ping(): Promise<void> {
    return this.#later(false, () => void this.#db.prepare("SELECT 1").get());
  }

  close(): void {
    this.#flush();
    this.#db.close();
  }

  /** Queues `fn` for the end of this turn of the event loop (see the module's note). */
  #later<T>(writes: boolean, fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#batch.push({ writes, fn, resolve: resolve as (v: unknown) => void, reject }) === 1) setImmediate(() => this.#flush());
    });
  }

  /**
   * Runs the waiting operations: reads alone without a transaction (no lock taken); otherwise
   * all in one, each write in a savepoint. Each caller hears once the batch is committed. When
   * the transaction cannot begin (the file locked past busy_timeout) the writes fail and the
   * reads are answered; when it cannot commit (a full disk), every caller of the batch hears why.
   */
  #flush(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    if (!batch.some((p) => p.writes)) {
      for (const p of batch) settleWith(p, () => p.fn());
      return;
    }
    // Alone in its turn (a quiet server), a write needs no savepoint: the transaction is its own.
    if (batch.length === 1) {
      settleWith(batch[0]!, () => this.#tx(batch[0]!.fn));
      return;
    }
    try {
      this.#begin.run();
    } catch (e) {
      // The file stayed locked past busy_timeout: the writes fail; the reads need no lock.
      for (const p of batch) {
        if (p.writes) p.reject(e);
        else settleWith(p, () => p.fn());
      }
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      for (const p of batch) {
        if (!p.writes) {
          try {
            outcomes.push({ ok: true, value: p.fn() });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
          continue;
        }
        this.#savepoint.run();
        let value: unknown;
        try {
          value = p.fn();
        } catch (error) {
          // Undoes this operation alone; when SQLite has rolled the whole transaction back itself
          // (a full disk, an I/O error) this throws too, and the batch fails below.
          try {
            this.#rollbackTo.run();
            this.#release.run();
          } catch {
            throw error;
          }
          outcomes.push({ ok: false, error });
          continue;
        }
        this.#release.run();
        outcomes.push({ ok: true, value });
      }
      this.#commit.run();
    } catch (e) {
      try {
        this.#rollback.run();
      } catch { /* nothing left to undo */ }
      for (const p of batch) p.reject(e);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }

  #expiry(ttlSeconds: number | undefined): number | null {
    return ttlSeconds === undefined ? null : this.#now() + ttlSeconds * 1000;
  }

  /** Expired rows are dropped now and then, not on every write. */
  #wrote(): void {
    if (++this.#writes % 1000 !== 0) return;
    this.#prune.run(this.#now());
    this.#hitsPrune.run(this.#now());
    this.#totalsPrune.run();
  }

  /**
   * A database written before hit_events kept a row per event in `hits`, with an index: its rows
   * move to hit_events once, by whichever process opens the file first (the others find no
   * `hits` when their turn comes). The totals stay as they were: the sums do not change.
   */
  #moveOldHits(): void {
    const old = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hits'");
    // Looked at first without the write lock: a database that has nothing to move is not locked.
    if (!old.get()) return;
    this.#tx(() => {
      if (!old.get()) return; // another process moved them meanwhile
      this.#db.exec(`INSERT INTO hit_events (k, t, e, w) SELECT k, t, max(e), sum(w) FROM hits WHERE true GROUP BY k, t ${ADD_TO_ROW}`);
      this.#db.exec("DROP TABLE hits");
    });
  }

  #tx<T>(fn: () => T): T {
    this.#begin.run();
    try {
      const r = fn();
      this.#commit.run();
      return r;
    } catch (e) {
      try {
        this.#rollback.run();
      } catch { /* nothing left to undo */ }
      throw e;
    }
  }
}

/** An operation waiting for the end of the turn. */
interface Pending {
  readonly writes: boolean;
  readonly fn: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

function settleWith(p: Pending, fn: () => unknown): void {
  try {
    p.resolve(fn());
  } catch (e) {
    p.reject(e);
  }
}

const open = new Map<string, SqliteStore>();

/**
 * The store whose database is `qpsmtpd.sqlite` in `dir`; one per file for the whole process
 * (the first caller's clock decides expiry).
 */
export function storeIn(dir: string, now: () => number = Date.now): Store {
  const path = join(dir, "qpsmtpd.sqlite");
  let s = open.get(path);
  if (!s) open.set(path, s = new SqliteStore(path, { now }));
  return s;
}
