/**
 * Key/value state that outlives a connection (greylisting, karma). The embedded default is
 * SQLite through `node:sqlite` (Bun and Deno both have it); a Redis store can implement the same
 * interface later.
 * @module
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";

export interface Store {
  get(key: string): Promise<string | undefined>;
  /** Sets a value, expiring after `ttlSeconds` (none = never). */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix` (for tools and tests). */
  keys(prefix: string): Promise<string[]>;
  close(): void;
}

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #set: StatementSync;
  readonly #del: StatementSync;
  readonly #keys: StatementSync;
  readonly #prune: StatementSync;
  #writes = 0;

  /** @param path a file (its directory is created, mode 0700) or ":memory:" */
  constructor(path: string) {
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
    const row = this.#get.get(key, Date.now()) as { v: string } | undefined;
    return Promise.resolve(row?.v);
  }

  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    this.#set.run(key, value, ttlSeconds === undefined ? null : Date.now() + ttlSeconds * 1000);
    if (++this.#writes % 1000 === 0) this.#prune.run(Date.now());
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.#del.run(key);
    return Promise.resolve();
  }

  keys(prefix: string): Promise<string[]> {
    const rows = this.#keys.all(prefix, `${prefix}\uffff`, Date.now()) as Array<{ k: string }>;
    return Promise.resolve(rows.map((r) => r.k));
  }

  close(): void {
    this.#db.close();
  }
}

const open = new Map<string, SqliteStore>();

/** One store per database file for the whole process (plugins reloaded by SIGHUP share it). */
export function sqliteStore(path: string): Store {
  let s = open.get(path);
  if (!s) open.set(path, (s = new SqliteStore(path)));
  return s;
}

/** The store a plugin uses: `db_dir` argument, else the `db_dir` config file, else the spool dir. */
export function pluginStore(p: { options: Record<string, string>; host: { config(name: string): string | undefined; spool_dir(): string } }): Store {
  const dir = p.options["db_dir"] ?? p.host.config("db_dir") ?? p.host.spool_dir();
  return sqliteStore(`${dir}/qpsmtpd.sqlite`);
}
