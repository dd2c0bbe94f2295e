/**
 * The embedded key/value store behind `this.store()`: SQLite through `node:sqlite` (Bun and Deno
 * both have it), one database file per directory, shared by every plugin generation.
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Store } from "../api/store.ts";

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #set: StatementSync;
  readonly #del: StatementSync;
  readonly #keys: StatementSync;
  readonly #prune: StatementSync;
  #writes = 0;
  readonly #now: () => number;

  /**
   * @param path a file (its directory is created, mode 0700) or ":memory:"
   * @param opts.now the clock for expiry, epoch ms (default Date.now)
   */
  constructor(path: string, opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
    if (path !== ":memory:") fs.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000;");
    this.#db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, expires INTEGER)");
    this.#get = this.#db.prepare("SELECT v FROM kv WHERE k = ? AND (expires IS NULL OR expires > ?)");
    this.#set = this.#db.prepare("INSERT OR REPLACE INTO kv (k, v, expires) VALUES (?, ?, ?)");
    this.#del = this.#db.prepare("DELETE FROM kv WHERE k = ?");
    this.#keys = this.#db.prepare("SELECT k FROM kv WHERE k >= ? AND k < ? AND (expires IS NULL OR expires > ?)");
    this.#prune = this.#db.prepare("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?");
  }

  get(key: string): Promise<string | undefined> {
    const row = this.#get.get(key, this.#now()) as { v: string } | undefined;
    return Promise.resolve(row?.v);
  }

  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    this.#set.run(key, value, ttlSeconds === undefined ? null : this.#now() + ttlSeconds * 1000);
    if (++this.#writes % 1000 === 0) this.#prune.run(this.#now());
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.#del.run(key);
    return Promise.resolve();
  }

  keys(prefix: string): Promise<string[]> {
    const rows = this.#keys.all(prefix, `${prefix}\uffff`, this.#now()) as Array<{ k: string }>;
    return Promise.resolve(rows.map((r) => r.k));
  }

  close(): void {
    this.#db.close();
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
