/**
 * qpsmtpd's flat-file config directory: one value a line, `#` comments, `$include`, and a
 * per-file search path (`QPSMTPD_CONFIG` or `--config`, then `config/` beside the program, then
 * qmail's `control/`). Contents are cached by mtime and looked at again at most once a second
 * (`statTtlMs`), so edits apply within a second without a restart, and the hot path makes no
 * system calls.
 * @module
 */
import * as fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { ConfigError } from "./errors.ts";

/** One value with where it came from. */
export interface ConfigLine {
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

interface Cached {
  mtimeMs: number;
  size: number;
  lines: ConfigLine[];
}

export interface ConfigDirOptions {
  /** Directories searched in order, per file. */
  readonly dirs: readonly string[];
  /** How long a name's values are trusted before the files are checked again, ms. @default 1000 */
  readonly statTtlMs?: number;
  /** Called for problems that do not stop a read (an include cycle, an unreadable file). */
  readonly warn?: (message: string) => void;
  /** The clock for `statTtlMs`, epoch ms. @default Date.now */
  readonly now?: () => number;
}

export class ConfigDir {
  readonly dirs: readonly string[];
  readonly #warn: (message: string) => void;
  readonly #cache = new Map<string, Cached>();
  readonly #memo = new Map<string, { at: number; lines: ConfigLine[]; values: string[] }>();
  readonly #ttl: number;
  readonly #now: () => number;
  /** Values set by tests (mockConfig) or by code, consulted before the files. */
  readonly overrides = new Map<string, readonly string[]>();

  constructor(opts: ConfigDirOptions) {
    this.dirs = opts.dirs;
    this.#ttl = opts.statTtlMs ?? 1000;
    this.#warn = opts.warn ?? (() => {});
    this.#now = opts.now ?? Date.now;
  }

  /** The path a config name resolves to, or undefined when no directory has it. */
  path(name: string): string | undefined {
    for (const p of isAbsolute(name) ? [name] : this.dirs.map((d) => join(d, name))) {
      try {
        fs.statSync(p);
        return p;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENOTDIR") this.#warn(`config: cannot read ${p}: ${code}`);
      }
    }
    return undefined;
  }

  /** Every value of `name`, with file and line, `$include`s spliced in. */
  lines(name: string): readonly ConfigLine[] {
    return this.#lookup(name).lines;
  }

  /** Every value of `name`. */
  all(name: string): readonly string[] {
    return this.#lookup(name).values;
  }

  /** The first value of `name`. */
  get(name: string): string | undefined {
    return this.#lookup(name).values[0];
  }

  /** Forgets every cached answer (SIGHUP), so the next read looks at the files. */
  invalidate(): void {
    this.#memo.clear();
    this.generation++;
  }

  /** Counts the invalidations, so what is derived from the files can tell it is stale. */
  generation = 0;

  #lookup(name: string): { lines: ConfigLine[]; values: string[] } {
    const o = this.overrides.size === 0 ? undefined : this.overrides.get(name);
    if (o) return { lines: o.map((value, i) => ({ value, file: `(override ${name})`, line: i + 1 })), values: [...o] };
    const now = this.#now();
    const hit = this.#memo.get(name);
    if (hit && now - hit.at < this.#ttl) return hit;
    const lines = this.#read(name, new Set());
    const entry = { at: now, lines, values: lines.map((l) => l.value) };
    this.#memo.set(name, entry);
    return entry;
  }

  /** The first value as a non-negative integer; throws a ConfigError naming file and line. */
  int(name: string, fallback: number): number {
    const l = this.lines(name)[0];
    if (!l) return fallback;
    if (!/^\d+$/.test(l.value)) throw new ConfigError(l.file, l.line, `${name} must be a whole number, not "${l.value}"`);
    return Number(l.value);
  }

  /** The first value as a boolean (1/yes/true/on vs 0/no/false/off). */
  bool(name: string, fallback = false): boolean {
    const l = this.lines(name)[0];
    if (!l) return fallback;
    if (/^(1|yes|true|on)$/i.test(l.value)) return true;
    if (/^(0|no|false|off)$/i.test(l.value)) return false;
    throw new ConfigError(l.file, l.line, `${name} must be 1 or 0, not "${l.value}"`);
  }

  #read(name: string, seen: Set<string>): ConfigLine[] {
    const path = this.path(name);
    if (path === undefined) return [];
    if (seen.has(path)) {
      this.#warn(`config: circular $include of ${path}; ignoring it`);
      return [];
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      return [];
    }
    if (st.isDirectory()) {
      seen.add(path);
      const out: ConfigLine[] = [];
      for (const f of fs.readdirSync(path).filter((f) => !f.startsWith(".")).sort()) {
        out.push(...this.#read(join(path, f), seen));
      }
      seen.delete(path);
      return out;
    }
    let cached = this.#cache.get(path);
    if (!cached || cached.mtimeMs !== st.mtimeMs || cached.size !== st.size) {
      let text: string;
      try {
        text = fs.readFileSync(path, "utf8");
      } catch (e) {
        this.#warn(`config: cannot read ${path}: ${(e as Error).message}`);
        return [];
      }
      cached = { mtimeMs: st.mtimeMs, size: st.size, lines: parseLines(text, path) };
      this.#cache.set(path, cached);
    }
    if (!cached.lines.some((l) => l.value.startsWith("$include"))) return cached.lines;
    seen.add(path);
    const out: ConfigLine[] = [];
    for (const l of cached.lines) {
      const m = /^\$include\s+(\S+)$/.exec(l.value);
      if (m) out.push(...this.#read(m[1]!, seen));
      else out.push(l);
    }
    seen.delete(path);
    return out;
  }
}

/** Splits file text into values: trimmed, without blank lines and `#` comments. */
export function parseLines(text: string, file: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const v = lines[i]!.trim();
    if (v === "" || v.startsWith("#")) continue;
    out.push({ value: v, file, line: i + 1 });
  }
  return out;
}
