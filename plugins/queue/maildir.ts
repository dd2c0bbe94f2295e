/**
 * queue/maildir: delivers each message into a Maildir, durably: the file is written to `tmp/`,
 * fsynced, linked into `new/`, and `new/` is fsynced before the client hears 250.
 *
 * Hooks: queue.
 * Arguments: `dir [subdir-template [mode]]`.
 *  - `dir`: the Maildir (or the root of the per-recipient Maildirs); created at the first
 *    delivery if missing.
 *  - `subdir-template`: deliver one copy per recipient into `dir/<template>`, where `%l` is the
 *    local part, `%d` the domain and `%u` the whole address. Characters outside
 *    `-A-Za-z0-9+_.,@=` become `_`, and a leading dot too, so an address cannot climb the tree.
 *  - `mode`: octal permissions for new directories (default 700); files get it without x bits.
 * Adds `Return-Path:` and `Delivered-To:` lines. With one Maildir for all recipients, the
 * Delivered-To lines come in qpsmtpd's order: it adds each at the top of the header, so the
 * last recipient's comes first.
 * Replies: `250 Queued! <Message-Id>`; on any failure DECLINED (451), so nothing is lost.
 * Clean-up: a file left in `tmp/` by a delivery that never finished (a crash, a full disk) is
 * removed once it is older than 36 hours, as maildir(5) says: in `dir` at start-up, and in each
 * Maildir it delivers to at most once an hour after that (no timer outlives a reload).
 */
import * as fs from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Address, DECLINED, type HookContext, type Hooks, type Init, LOGERROR, LOGINFO, OK, type Transaction } from "qpsmtpd";

interface Data {
  dir: string;
  /** Per-recipient sub directory template (`%l`, `%d`, `%u`), if any. */
  template: string | undefined;
  dirMode: number;
  fileMode: number;
  /** When each Maildir's tmp/ was last swept (server clock, ms). */
  swept: Map<string, number>;
}

/** maildir(5): a tmp/ file this old is a delivery that died. */
export const STALE_TMP_MS = 36 * 3600_000;
const SWEEP_EVERY_MS = 3600_000;

let counter = 0;
const host = hostname().replace(/[^\w.-]/g, "_");

export const register: Init<Data> = function (server, dir, template, mode) {
  if (!dir) throw new Error("queue/maildir needs the Maildir directory as its first argument");
  if (template !== undefined && !/%[ldu]/.test(template)) {
    throw new Error(`queue/maildir: sub directory template "${template}" has no %l, %d or %u`);
  }
  if (mode !== undefined && !/^[0-7]{3}$/.test(mode)) throw new Error(`queue/maildir: mode "${mode}" is not octal`);
  const dirMode = mode === undefined ? 0o700 : parseInt(mode, 8);
  const swept = new Map([[dir, server.now()]]);
  Object.assign(this.data, { dir, template, dirMode, fileMode: dirMode & 0o666, swept } satisfies Data);
  const removed = sweepTmp(dir, server.now());
  if (removed > 0) this.log(LOGINFO, `removed ${removed} stale file(s) from ${join(dir, "tmp")}`);
};

/** Removes tmp/ files older than STALE_TMP_MS; returns how many. A missing tmp/ is no error. */
export function sweepTmp(dir: string, now: number): number {
  const tmp = join(dir, "tmp");
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    try {
      const st = fs.lstatSync(join(tmp, name));
      if (st.isFile() && now - st.mtimeMs > STALE_TMP_MS) {
        fs.unlinkSync(join(tmp, name));
        removed++;
      }
    } catch { /* gone meanwhile, or not ours */ }
  }
  return removed;
}

/** Sweeps `dir` when its last sweep is an hour old. */
function sweepIfDue(p: HookContext<Data>, dir: string): void {
  const now = p.server.now();
  if (now - (p.data.swept.get(dir) ?? 0) < SWEEP_EVERY_MS) return;
  p.data.swept.set(dir, now);
  const removed = sweepTmp(dir, now);
  if (removed > 0) p.log(LOGINFO, `removed ${removed} stale file(s) from ${join(dir, "tmp")}`);
}

function makeMaildir(dir: string, mode: number): void {
  for (const sub of ["cur", "new", "tmp"]) fs.mkdirSync(join(dir, sub), { recursive: true, mode });
}

function safe(s: string): string {
  return s.replace(/[^-A-Za-z0-9+_.,@=]/g, "_").replace(/^\./, "_");
}

export function subdirFor(template: string, rcpt: Address): string {
  const user = safe(rcpt.user);
  const domain = safe(rcpt.host ?? "");
  return template.replace(/%([ldu])/g, (_, k: string) => (k === "l" ? user : k === "d" ? domain : `${user}@${domain}`));
}

export const hook_queue: Hooks<Data>["queue"] = async function (txn) {
  const s = this.data;
  const msgId = (txn.header()?.get("Message-Id", 0) ?? "").replace(/[\r\n].*/s, "");
  try {
    if (s.template === undefined) {
      const delivered = txn.recipients().map((r) => `Delivered-To: ${r.address()}\n`).reverse().join("");
      await writeMessage(txn, s.dir, s, delivered);
      sweepIfDue(this, s.dir);
    } else {
      for (const rcpt of txn.recipients()) {
        const dir = join(s.dir, subdirFor(s.template, rcpt));
        await writeMessage(txn, dir, s, `Delivered-To: ${rcpt.address()}\n`);
        sweepIfDue(this, dir);
      }
    }
  } catch (e) {
    this.log(LOGERROR, `delivery failed: ${(e as Error).message}`);
    return DECLINED;
  }
  return [OK, `Queued! ${msgId}`.trim()];
};

/** Writes into `dir/tmp`, syncs, links into `dir/new` and syncs it; makes the Maildir when it is missing. */
async function writeMessage(txn: Transaction, dir: string, modes: Pick<Data, "dirMode" | "fileMode">, extra: string): Promise<void> {
  const now = Date.now();
  const name = `${Math.floor(now / 1000)}.P${process.pid}M${(now % 1000) * 1000}Q${counter++}.${host}`;
  const tmp = join(dir, "tmp", name);
  const open = (): Promise<fs.promises.FileHandle> => fs.promises.open(tmp, "wx", modes.fileMode);
  const fh = await open().catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
    makeMaildir(dir, modes.dirMode);
    return open();
  });
  try {
    await writeAll(fh, txn.message_stream(), Buffer.from(`Return-Path: ${txn.sender()?.format() ?? "<>"}\n${extra}`));
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await fs.promises.link(tmp, join(dir, "new", name));
  await fs.promises.unlink(tmp);
  await syncDir(join(dir, "new"));
}

/** Bytes gathered into one write: each write is a trip to the runtime's I/O threads (tens of µs of CPU). */
const WRITE_BATCH = 1024 * 1024;

/** Writes `first`, then the chunks, a writev per WRITE_BATCH bytes; a short write is an error. */
async function writeAll(fh: fs.promises.FileHandle, chunks: AsyncIterable<Uint8Array>, first: Uint8Array): Promise<void> {
  let batch: Uint8Array[] = [first];
  let size = first.length;
  const flush = async (): Promise<void> => {
    const { bytesWritten } = await fh.writev(batch);
    if (bytesWritten !== size) throw new Error(`short write: ${bytesWritten} of ${size} bytes`);
    batch = [];
    size = 0;
  };
  for await (const chunk of chunks) {
    batch.push(chunk);
    size += chunk.length;
    if (size >= WRITE_BATCH) await flush();
  }
  if (size > 0) await flush();
}

async function syncDir(dir: string): Promise<void> {
  const d = await fs.promises.open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
