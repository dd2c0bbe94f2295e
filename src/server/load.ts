/**
 * The cluster's open sessions, for what is not a limit: stress (Postfix's, at `stress_threshold`
 * percent of `-c`) and the addresses `pre-connection` hooks get in `child_addrs`. Each worker
 * reports its sessions as they start and end (batched per tick, in order); the primary adds them
 * up, decides stress, and sends each worker that has `pre-connection` hooks the other workers'
 * addresses as they change. Nothing here waits for an answer.
 * @module
 */
import { LOGNOTICE } from "../api/codes.ts";

/** Worker to primary. */
export type LoadUp =
  /** A session started (`d` 1) or ended (-1). */
  | { readonly t: "session"; readonly ip: string; readonly d: 1 | -1 }
  /** Whether this worker's plugins have `pre-connection` hooks (and so want the addresses). */
  | { readonly t: "subscribe"; readonly on: boolean };

/** Primary to worker. */
export type LoadDown =
  | { readonly t: "stress"; readonly on: boolean }
  /** Changes to the other workers' session counts per address; `reset` starts from nothing. */
  | { readonly t: "addrs"; readonly reset: boolean; readonly d: ReadonlyArray<readonly [string, number]> };

export interface LoadBoardOptions {
  /** `-c`, 0 = unlimited (then never stress). */
  readonly limitConnections: number;
  /** The `stress_threshold` config value (percent; 75), read when needed. */
  readonly threshold: () => number;
  readonly send: (worker: number, m: LoadDown) => void;
  readonly log: (level: number, message: string) => void;
}

const add = (m: Map<string, number>, ip: string, d: number): void => {
  const n = (m.get(ip) ?? 0) + d;
  if (n <= 0) m.delete(ip);
  else m.set(ip, n);
};

/** The primary's side. */
export class LoadBoard {
  readonly #o: LoadBoardOptions;
  readonly #byWorker = new Map<number, Map<string, number>>();
  readonly #subscribers = new Set<number>();
  /** Changes since the last flush, per worker they came from. */
  readonly #changes = new Map<number, Map<string, number>>();
  #total = 0;
  #stressed = false;

  constructor(o: LoadBoardOptions) {
    this.#o = o;
  }

  get total(): number {
    return this.#total;
  }

  get stressed(): boolean {
    return this.#stressed;
  }

  join(worker: number): void {
    this.#byWorker.set(worker, new Map());
  }

  leave(worker: number): void {
    const mine = this.#byWorker.get(worker);
    if (!mine) return;
    this.#byWorker.delete(worker);
    this.#subscribers.delete(worker);
    for (const [ip, n] of mine) {
      this.#total -= n;
      this.#change(worker, ip, -n);
    }
    this.#checkStress();
  }

  receive(worker: number, m: LoadUp): void {
    const mine = this.#byWorker.get(worker);
    if (!mine) return;
    if (m.t === "session") {
      add(mine, m.ip, m.d);
      this.#total += m.d;
      this.#change(worker, m.ip, m.d);
      // One session at a time, in the order they came: the count crosses the threshold exactly
      // where one process would have.
      this.#checkStress();
    } else if (m.on) {
      // Changes waiting for the flush are in the snapshot already: send them to the others first.
      this.flush();
      this.#subscribers.add(worker);
      this.#o.send(worker, { t: "addrs", reset: true, d: [...this.#others(worker)] });
    } else {
      this.#subscribers.delete(worker);
    }
  }

  /** Sends the tick's changes to the subscribers, each without its own. */
  flush(): void {
    if (this.#changes.size === 0) return;
    for (const s of this.#subscribers) {
      const d = new Map<string, number>();
      for (const [from, changes] of this.#changes) {
        if (from === s) continue;
        for (const [ip, n] of changes) d.set(ip, (d.get(ip) ?? 0) + n);
      }
      const list = [...d].filter(([, n]) => n !== 0);
      if (list.length) this.#o.send(s, { t: "addrs", reset: false, d: list });
    }
    this.#changes.clear();
  }

  /** Whether changes wait for `flush`. */
  get dirty(): boolean {
    return this.#changes.size > 0;
  }

  #others(worker: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [w, m] of this.#byWorker) if (w !== worker) { for (const [ip, n] of m) add(out, ip, n); }
    return out;
  }

  #change(worker: number, ip: string, d: number): void {
    if (this.#subscribers.size === 0) return;
    let c = this.#changes.get(worker);
    if (!c) this.#changes.set(worker, c = new Map());
    c.set(ip, (c.get(ip) ?? 0) + d);
  }

  #checkStress(): void {
    const limit = this.#o.limitConnections;
    const percent = Math.min(100, Math.max(1, this.#o.threshold()));
    const stressed = limit > 0 && this.#total * 100 >= limit * percent;
    if (stressed === this.#stressed) return;
    this.#stressed = stressed;
    this.#o.log(
      LOGNOTICE,
      stressed ? `under stress: ${this.#total} of ${limit} connections; reads now time out sooner` : "stress over",
    );
    for (const w of this.#byWorker.keys()) this.#o.send(w, { t: "stress", on: stressed });
  }
}

/** A worker's copy of the other workers' sessions per address. */
export class PeerAddrs {
  readonly #counts = new Map<string, number>();

  receive(m: Extract<LoadDown, { t: "addrs" }>): void {
    if (m.reset) this.#counts.clear();
    for (const [ip, n] of m.d) add(this.#counts, ip, n);
  }

  /** One entry per session, as `child_addrs` lists them. */
  list(): string[] {
    const out: string[] = [];
    for (const [ip, n] of this.#counts) for (let i = 0; i < n; i++) out.push(ip);
    return out;
  }
}
