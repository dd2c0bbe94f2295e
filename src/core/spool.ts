/**
 * Message storage while a transaction lives: memory up to `size_threshold`, then a file in the
 * spool directory. It holds the message as received (header block and body, LF line ends).
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export class Spool {
  readonly #dir: () => string;
  readonly #threshold: number;
  #chunks: Buffer[] = [];
  #fd: number | undefined;
  #path: string | undefined;
  /** Bytes written. */
  size = 0;

  /**
   * @param dir the spool directory, asked for when the message first goes to a file
   * @param threshold bytes kept in memory before moving to a file (0 = always a file)
   */
  constructor(dir: () => string, threshold: number) {
    this.#dir = dir;
    this.#threshold = threshold;
  }

  /**
   * Stores `chunk`. With `owned` the caller hands the bytes over (it will not change them): they
   * are kept as they are rather than copied.
   */
  write(chunk: Uint8Array, owned = false): void {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (this.#fd === undefined && this.size > this.#threshold) this.#toFile();
    if (this.#fd !== undefined) writeAll(this.#fd, chunk);
    else this.#chunks.push(owned && Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  }

  #toFile(): void {
    const dir = this.#dir();
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${Date.now()}.${process.pid}.${randomBytes(6).toString("hex")}.spool`);
    this.#fd = fs.openSync(path, "wx+", 0o600);
    this.#path = path;
    for (const c of this.#chunks) writeAll(this.#fd, c);
    this.#chunks = [];
  }

  /** The spool file's path, moving the message to a file first if it is in memory. */
  filename(): string {
    if (this.#fd === undefined) this.#toFile();
    return this.#path!;
  }

  get inMemory(): boolean {
    return this.#fd === undefined;
  }

  /** Reads the stored bytes from `start` on, in chunks. */
  async *read(start = 0): AsyncGenerator<Buffer> {
    if (this.#fd === undefined) {
      let skip = start;
      for (const c of this.#chunks) {
        if (skip >= c.length) {
          skip -= c.length;
          continue;
        }
        yield skip > 0 ? c.subarray(skip) : c;
        skip = 0;
      }
      return;
    }
    const fd = this.#fd;
    const buf = Buffer.allocUnsafe(65536);
    let pos = start;
    while (pos < this.size) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, Math.min(buf.length, this.size - pos), pos, (err, bytes) => err ? reject(err) : resolve(bytes))
      );
      if (n === 0) break;
      pos += n;
      yield Buffer.from(buf.subarray(0, n));
    }
  }

  /** Deletes the file, if any, and forgets the content. */
  destroy(): void {
    if (this.#fd !== undefined) {
      try {
        fs.closeSync(this.#fd);
      } catch { /* already closed */ }
      try {
        fs.unlinkSync(this.#path!);
      } catch { /* already gone */ }
    }
    this.#fd = undefined;
    this.#path = undefined;
    this.#chunks = [];
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

const freeCache = new Map<string, { at: number; bytes: number }>();

/** Free bytes for unprivileged users on the disk holding `dir` (checked at most once a second). */
export function freeSpace(dir: string): number {
  const hit = freeCache.get(dir);
  const now = Date.now();
  if (hit && now - hit.at < 1000) return hit.bytes;
  let bytes = Infinity;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statfsSync(dir);
    bytes = Number(st.bavail) * Number(st.bsize);
  } catch { /* unknown: do not refuse mail for it */ }
  freeCache.set(dir, { at: now, bytes });
  return bytes;
}

/**
 * Removes spool and temp files left by processes that are gone (a crash or kill -9 mid-DATA),
 * so no half-received message lingers. Returns how many were removed.
 */
export function cleanStaleSpool(dir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const m = /^\d+\.(\d+)\.[0-9a-f]+\.(?:spool|tmp)$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its process is alive
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    try {
      fs.rmSync(join(dir, name), { force: true, recursive: true });
      removed++;
    } catch { /* not ours to remove */ }
  }
  return removed;
}
