/**
 * Admission: the `-c` (connections at once) and `-m` (from one address) limits, counted for one
 * process (LocalGate) or for every worker of a cluster together (WorkerGate in each worker, the
 * Ledger in the primary).
 *
 * The cluster's counts are exact without an IPC round trip per connection. Each worker owns a
 * share of each limit, `floor(limit / workers)`, for every key at once (the total, and each
 * address) and admits within it on its own: the shares add up to no more than the limit. A
 * worker that reaches its share of a key asks the primary, which then LOCKS that key: every
 * worker reports its exact count of it and from then on asks for each further connection of
 * it and reports each close. Locked, the primary's counts are exact and it grants or refuses as a
 * single process would. When every worker is back below its share (by a tenth, so a key does
 * not flap), the primary unlocks the key and the workers go back to admitting on their own.
 * So the round trips happen only near a limit: for the total past half of `-c` on one worker
 * (two workers), for one address past half of `-m`.
 *
 * Messages between one worker and the primary arrive in the order they were sent (one pipe each
 * way); the proofs in the comments below lean on that and on nothing else.
 * @module
 */

/** The key of the total count (`-c`); any other key is a client address (`-m`). */
export const TOTAL = "";

export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly limit: "total" | "ip"; readonly count: number };

const OK: Verdict = { ok: true };

/** Admits a connection before its session (or refuses it), and is told when it ends. */
export interface Gate {
  /** Synchronous when the answer is local; a promise when the primary decides. */
  admit(ip: string): Verdict | Promise<Verdict>;
  /** The connection that `admit` let in has ended. */
  release(ip: string): void;
}

export interface Limits {
  /** `-c`, 0 = unlimited. */
  readonly limitConnections: number;
  /** `-m`, 0 = unlimited. */
  readonly maxFromIp: number;
}

/** The keys a connection from `ip` counts against, the total first. */
function keysOf(l: Limits, ip: string): string[] {
  const keys: string[] = [];
  if (l.limitConnections > 0) keys.push(TOTAL);
  if (l.maxFromIp > 0) keys.push(ip);
  return keys;
}

const limitOf = (l: Limits, key: string): number => (key === TOTAL ? l.limitConnections : l.maxFromIp);

/** What each of `workers` may admit of `limit` without asking. */
export const shareOf = (limit: number, workers: number): number => Math.floor(limit / workers);

/** A refusal for `key` at `count`. */
const refusal = (key: string, count: number): Verdict => ({ ok: false, limit: key === TOTAL ? "total" : "ip", count });

/** One process: plain counters. */
export class LocalGate implements Gate {
  readonly #limits: Limits;
  readonly #open = new Map<string, number>();

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  admit(ip: string): Verdict {
    const keys = keysOf(this.#limits, ip);
    for (const key of keys) {
      const n = this.#open.get(key) ?? 0;
      if (n >= limitOf(this.#limits, key)) return refusal(key, n);
    }
    for (const key of keys) this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    return OK;
  }

  release(ip: string): void {
    for (const key of keysOf(this.#limits, ip)) {
      const n = (this.#open.get(key) ?? 1) - 1;
      if (n <= 0) this.#open.delete(key);
      else this.#open.set(key, n);
    }
  }

  /** Connections open now (for tests). */
  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}

/** Worker to primary. */
export type GateUp =
  | { readonly t: "want"; readonly id: number; readonly keys: readonly string[] }
  | { readonly t: "locked"; readonly key: string; readonly round: number; readonly open: number }
  | { readonly t: "closed"; readonly keys: readonly string[] };

/** Primary to worker. */
export type GateDown =
  | { readonly t: "lock"; readonly key: string; readonly round: number }
  | { readonly t: "unlock"; readonly key: string }
  | { readonly t: "grant"; readonly id: number; readonly verdict: Verdict };

export interface WorkerGateOptions extends Limits {
  /** How many workers the cluster runs (the shares are this fraction of each limit). */
  readonly workers: number;
  /** Sends a message to the primary; `urgent` ones go at once, the others may wait for the tick's end. */
  readonly send: (m: GateUp, urgent: boolean) => void;
}

/** A worker's side: admits within its shares, asks the primary past them or for locked keys. */
export class WorkerGate implements Gate {
  readonly #o: WorkerGateOptions;
  readonly #open = new Map<string, number>();
  readonly #locked = new Set<string>();
  readonly #pending = new Map<number, (v: Verdict) => void>();
  #nextId = 0;

  constructor(o: WorkerGateOptions) {
    this.#o = o;
  }

  /** The keys the primary holds locked when this worker joins. */
  hello(locked: readonly string[]): void {
    for (const k of locked) this.#locked.add(k);
  }

  admit(ip: string): Verdict | Promise<Verdict> {
    const keys = keysOf(this.#o, ip);
    let ask: string[] | undefined;
    for (const key of keys) {
      const local = !this.#locked.has(key) && this.count(key) < shareOf(limitOf(this.#o, key), this.#o.workers);
      if (!local) (ask ??= []).push(key);
    }
    // The local keys are taken now, so other connections admitted while the primary answers
    // cannot take the same slots; a refusal gives them back.
    const local = ask ? keys.filter((k) => !ask!.includes(k)) : keys;
    for (const key of local) this.#add(key, 1);
    if (!ask) return OK;
    const id = this.#nextId++;
    const wanted = ask;
    return new Promise<Verdict>((resolve) => {
      this.#pending.set(id, (v) => {
        if (v.ok) {
          // The primary grants only keys it holds locked, so this worker holds them locked too
          // (for a share of 0 there was no lock round: the grant is the lock).
          for (const key of wanted) {
            this.#locked.add(key);
            this.#add(key, 1);
          }
        } else {
          this.#drop(local);
        }
        resolve(v);
      });
      this.#o.send({ t: "want", id, keys: wanted }, true);
    });
  }

  release(ip: string): void {
    this.#drop(keysOf(this.#o, ip));
  }

  receive(m: GateDown): void {
    switch (m.t) {
      case "lock":
        // The count sent is exact: every connection this worker admitted of the key is in it, and
        // from now on each new one is asked for and each close reported.
        this.#locked.add(m.key);
        this.#o.send({ t: "locked", key: m.key, round: m.round, open: this.count(m.key) }, true);
        break;
      case "unlock":
        this.#locked.delete(m.key);
        if (this.count(m.key) === 0) this.#open.delete(m.key);
        break;
      case "grant": {
        const done = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        done?.(m.verdict);
        break;
      }
    }
  }

  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  isLocked(key: string): boolean {
    return this.#locked.has(key);
  }

  #add(key: string, n: number): void {
    const v = this.count(key) + n;
    if (v <= 0 && !this.#locked.has(key)) this.#open.delete(key);
    else this.#open.set(key, Math.max(0, v));
  }

  /** Gives back one connection of each key; the primary hears of the locked ones. */
  #drop(keys: readonly string[]): void {
    let closed: string[] | undefined;
    for (const key of keys) {
      this.#add(key, -1);
      if (this.#locked.has(key)) (closed ??= []).push(key);
    }
    // At once: a key is locked only near its limit, where a slot freed late is a client refused.
    if (closed) this.#o.send({ t: "closed", keys: closed }, true);
  }
}

export interface LedgerOptions extends Limits {
  readonly workers: number;
  readonly send: (worker: number, m: GateDown) => void;
  /** Runs `fn` after `ms` (setTimeout by default; tests give their own clock). */
  readonly after?: (ms: number, fn: () => void) => void;
}

/**
 * How long a refusal waits for a close in flight. A client that quits and connects again at once
 * may reach one worker before the close of its last connection, on another worker, reaches the
 * primary; one process would have seen the close first. Only a connection about to be refused
 * waits.
 */
export const REFUSAL_GRACE_MS = 100;

interface Entry {
  readonly round: number;
  /** Workers whose exact count has not come yet. */
  readonly waiting: Set<number>;
  /** Each worker's exact count, once it came. */
  readonly open: Map<number, number>;
  /** Workers that hold the key locked (to be told when it is unlocked). */
  readonly members: Set<number>;
}

interface Want {
  readonly worker: number;
  readonly id: number;
  readonly keys: readonly string[];
}

/** The primary's side: locks keys when a worker reaches its share, and decides while locked. */
export class Ledger {
  readonly #o: LedgerOptions;
  readonly #workers = new Set<number>();
  readonly #entries = new Map<string, Entry>();
  readonly #queue: Want[] = [];
  /** Requests that would be refused, each until a close makes room or its grace ends. */
  readonly #held: Want[] = [];
  #round = 0;

  constructor(o: LedgerOptions) {
    this.#o = o;
  }

  /**
   * A worker starts taking connections: it holds every key locked now (its count of each is 0,
   * so no round waits for it). Returns those keys, for its hello.
   */
  join(worker: number): string[] {
    this.#workers.add(worker);
    for (const e of this.#entries.values()) {
      e.open.set(worker, 0);
      e.members.add(worker);
    }
    return [...this.#entries.keys()];
  }

  /** A worker is gone, and its connections with it. */
  leave(worker: number): void {
    if (!this.#workers.delete(worker)) return;
    for (const list of [this.#queue, this.#held]) {
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.worker === worker) list.splice(i, 1);
    }
    for (const e of this.#entries.values()) {
      e.open.delete(worker);
      e.waiting.delete(worker);
      e.members.delete(worker);
    }
    this.#retryHeld();
    this.#pump();
    for (const key of [...this.#entries.keys()]) this.#maybeUnlock(key);
  }

  receive(worker: number, m: GateUp): void {
    if (!this.#workers.has(worker)) return;
    switch (m.t) {
      case "want":
        this.#queue.push({ worker, id: m.id, keys: m.keys });
        this.#pump();
        break;
      case "locked": {
        const e = this.#entries.get(m.key);
        if (!e || e.round !== m.round || !e.waiting.has(worker)) return;
        e.open.set(worker, m.open);
        e.waiting.delete(worker);
        if (e.waiting.size === 0) this.#pump();
        break;
      }
      case "closed":
        for (const key of m.keys) {
          const e = this.#entries.get(key);
          // A close from a worker whose count is still awaited was sent before it saw the lock,
          // so the count it sends next already leaves it out.
          if (!e || e.waiting.has(worker)) continue;
          e.open.set(worker, Math.max(0, (e.open.get(worker) ?? 0) - 1));
        }
        this.#retryHeld();
        for (const key of m.keys) this.#maybeUnlock(key);
        break;
    }
  }

  /** Every worker's connections of `key`, or undefined when the key is not locked (for tests). */
  count(key: string): number | undefined {
    const e = this.#entries.get(key);
    return e ? this.#sum(e) : undefined;
  }

  /** Keys locked now (for tests and the log). */
  get locked(): string[] {
    return [...this.#entries.keys()];
  }

  #sum(e: Entry): number {
    let n = 0;
    for (const v of e.open.values()) n += v;
    return n;
  }

  #share(key: string): number {
    return shareOf(limitOf(this.#o, key), this.#o.workers);
  }

  /** Starts locking `key`: every worker is asked for its count (no one, for a share of 0). */
  #lock(key: string): Entry {
    const round = ++this.#round;
    const workers = [...this.#workers];
    // With a share of 0 no worker admits a connection of the key on its own: every count is 0
    // and exact already, and a worker learns the key is locked from its grant.
    const share = this.#share(key);
    const e: Entry = {
      round,
      waiting: new Set(share > 0 ? workers : []),
      open: new Map(workers.map((w) => [w, 0])),
      members: new Set(share > 0 ? workers : []),
    };
    this.#entries.set(key, e);
    if (share > 0) { for (const w of workers) this.#o.send(w, { t: "lock", key, round }); }
    return e;
  }

  /** Answers the waiting requests in order, each once every key it names is locked and counted. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const want = this.#queue[0]!;
      let counted = true;
      for (const key of want.keys) {
        const e = this.#entries.get(key) ?? this.#lock(key);
        if (e.waiting.size > 0) counted = false;
      }
      if (!counted) return;
      this.#queue.shift();
      if (!this.#decide(want)) {
        this.#held.push(want);
        const after = this.#o.after ?? ((ms: number, fn: () => void) => void setTimeout(fn, ms));
        after(REFUSAL_GRACE_MS, () => this.#giveUp(want));
      }
    }
  }

  /** Grants `want` when its keys have room (true); else, once held, refuses it (true); else false. */
  #decide(want: Want, final = false): boolean {
    let verdict: Verdict = OK;
    for (const key of want.keys) {
      const n = this.#sum(this.#entries.get(key)!);
      if (n >= limitOf(this.#o, key)) {
        verdict = refusal(key, n);
        break;
      }
    }
    if (!verdict.ok && !final) return false;
    if (verdict.ok) {
      for (const key of want.keys) {
        const e = this.#entries.get(key)!;
        e.open.set(want.worker, (e.open.get(want.worker) ?? 0) + 1);
        e.members.add(want.worker);
      }
    }
    this.#o.send(want.worker, { t: "grant", id: want.id, verdict });
    return true;
  }

  /** A close came: the held requests that now fit are granted, oldest first. */
  #retryHeld(): void {
    for (let i = 0; i < this.#held.length;) {
      const want = this.#held[i]!;
      if (want.keys.every((k) => this.#entries.has(k)) && this.#decide(want)) this.#held.splice(i, 1);
      else i++;
    }
  }

  /** The grace is over: refused, with the counts of now. */
  #giveUp(want: Want): void {
    const i = this.#held.indexOf(want);
    if (i < 0) return; // granted meanwhile, or its worker is gone
    this.#held.splice(i, 1);
    // Its keys stayed locked while it was held (see #maybeUnlock).
    this.#decide(want, true);
    for (const key of want.keys) this.#maybeUnlock(key);
  }

  /**
   * Unlocks `key` once every worker is below its share by a tenth (at least one): the shares
   * then hold again, with room on each worker. With a share of 0, once no connection is left.
   * Never while a request for the key waits or a count is awaited.
   */
  #maybeUnlock(key: string): void {
    const e = this.#entries.get(key);
    if (!e || e.waiting.size > 0) return;
    if (this.#queue.some((w) => w.keys.includes(key)) || this.#held.some((w) => w.keys.includes(key))) return;
    const share = this.#share(key);
    const under = share === 0 ? 0 : share - Math.max(1, Math.floor(share / 10));
    for (const n of e.open.values()) if (n > under) return;
    this.#entries.delete(key);
    for (const w of e.members) this.#o.send(w, { t: "unlock", key });
  }
}
