/**
 * The cluster's admission counting (src/server/admission.ts) with the IPC channel simulated: one
 * FIFO queue each way per worker, delivered in any interleaving. Safety (never more than `-c` in
 * all, never more than `-m` from one address) under random interleavings; the same answers as
 * one process when every message is delivered before the next connection; no message at all
 * while each worker stays within its share.
 */
import { describe, expect, test } from "bun:test";
import {
  type GateDown,
  type GateUp,
  Ledger,
  type Limits,
  LocalGate,
  shareOf,
  TOTAL,
  type Verdict,
  WorkerGate,
} from "../../src/server/admission.ts";

/** A seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Cluster {
  readonly ledger: Ledger;
  readonly gates: WorkerGate[] = [];
  readonly up: GateUp[][] = [];
  readonly down: GateDown[][] = [];
  /** Connections admitted and not yet released, per worker: their addresses. */
  readonly open: string[][] = [];
  /** The refusals' grace timers (REFUSAL_GRACE_MS), run by `expire`. */
  timers: Array<() => void> = [];
  sent = 0;

  constructor(limits: Limits, workers: number) {
    this.ledger = new Ledger({
      ...limits,
      workers,
      send: (w, m) => (this.sent++, this.down[w]!.push(m)),
      after: (_ms, fn) => this.timers.push(fn),
    });
    for (let w = 0; w < workers; w++) {
      this.up.push([]);
      this.down.push([]);
      this.open.push([]);
      this.gates.push(new WorkerGate({ ...limits, workers, send: (m) => (this.sent++, this.up[w]!.push(m)) }));
      this.gates[w]!.hello(this.ledger.join(w));
    }
  }

  /** Delivers one message: the oldest of queue `q` (an up queue for q < workers, else a down queue). */
  deliver(q: number): boolean {
    const n = this.gates.length;
    if (q < n) {
      const m = this.up[q]!.shift();
      if (m) this.ledger.receive(q, m);
      return m !== undefined;
    }
    const m = this.down[q - n]!.shift();
    if (m) this.gates[q - n]!.receive(m);
    return m !== undefined;
  }

  settle(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (let q = 0; q < this.gates.length * 2; q++) while (this.deliver(q)) moved = true;
    }
  }

  /** Every message delivered, and every refusal's grace over. */
  settleAll(): void {
    this.settle();
    while (this.timers.length) {
      for (const fn of this.timers.splice(0)) fn();
      this.settle();
    }
  }

  /** The oldest grace timer runs out. */
  expire(): void {
    this.timers.shift()?.();
  }

  admit(w: number, ip: string, done: (v: Verdict) => void = () => undefined): void {
    const v = this.gates[w]!.admit(ip);
    const settle = (v: Verdict): void => {
      if (v.ok) this.open[w]!.push(ip);
      done(v);
    };
    if (v instanceof Promise) void v.then(settle);
    else settle(v);
  }

  release(w: number, i: number): void {
    const [ip] = this.open[w]!.splice(i, 1);
    this.gates[w]!.release(ip!);
  }

  total(): number {
    return this.open.reduce((n, o) => n + o.length, 0);
  }

  from(ip: string): number {
    return this.open.reduce((n, o) => n + o.filter((a) => a === ip).length, 0);
  }
}

/** Lets the promise callbacks of the verdicts run. */
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe("LocalGate: one process", () => {
  test("-c and -m as before: the total first, then the address, each with the count", () => {
    const g = new LocalGate({ limitConnections: 3, maxFromIp: 2 });
    expect(g.admit("10.0.0.1")).toEqual({ ok: true });
    expect(g.admit("10.0.0.1")).toEqual({ ok: true });
    expect(g.admit("10.0.0.1")).toEqual({ ok: false, limit: "ip", count: 2 });
    expect(g.admit("10.0.0.2")).toEqual({ ok: true });
    expect(g.admit("10.0.0.3")).toEqual({ ok: false, limit: "total", count: 3 });
    g.release("10.0.0.1");
    expect(g.count(TOTAL)).toBe(2);
    expect(g.admit("10.0.0.1")).toEqual({ ok: true });
  });

  test("0 is unlimited", () => {
    const g = new LocalGate({ limitConnections: 0, maxFromIp: 0 });
    for (let i = 0; i < 100; i++) expect(g.admit("10.0.0.1")).toEqual({ ok: true });
  });
});

describe("WorkerGate and Ledger: a cluster", () => {
  test("within its shares a worker admits on its own: not one message", async () => {
    const c = new Cluster({ limitConnections: 1000, maxFromIp: 20 }, 2);
    for (let i = 0; i < 500; i++) c.admit(i % 2, `10.0.${i >> 8}.${i & 255}`);
    for (let i = 0; i < 250; i++) c.release(0, 0);
    for (let i = 0; i < 10; i++) c.admit(0, "192.0.2.1");
    expect(c.sent).toBe(0);
    expect(c.total()).toBe(260);
    // Past its share of the address (20 / 2), the worker asks, and the primary locks the address.
    c.admit(0, "192.0.2.1");
    expect(c.up[0]).toEqual([{ t: "want", id: 0, keys: ["192.0.2.1"] }]);
    c.settleAll();
    await tick();
    expect(c.ledger.count("192.0.2.1")).toBe(11);
    expect(c.from("192.0.2.1")).toBe(11);
  });

  test("-c 3 over two workers: three held, the fourth refused whichever worker has it, with the count", async () => {
    const c = new Cluster({ limitConnections: 3, maxFromIp: 0 }, 2);
    const got: Verdict[] = [];
    for (const w of [0, 0, 0, 1]) {
      c.admit(w, "10.0.0.1", (v) => got.push(v));
      c.settleAll();
      await tick();
    }
    expect(got).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: false, limit: "total", count: 3 }]);
    // One leaves: the other worker gets its place, and the next is refused again.
    c.release(0, 0);
    c.settle();
    c.admit(1, "10.0.0.2", (v) => got.push(v));
    c.settleAll();
    await tick();
    c.admit(0, "10.0.0.3", (v) => got.push(v));
    c.settleAll();
    await tick();
    expect(got.slice(4)).toEqual([{ ok: true }, { ok: false, limit: "total", count: 3 }]);
    expect(c.total()).toBe(3);
  });

  test("-m 1 over two workers (a share of 0): every connection asks; the address is free again after", async () => {
    const c = new Cluster({ limitConnections: 0, maxFromIp: 1 }, 2);
    const got: Verdict[] = [];
    for (const w of [0, 1]) {
      c.admit(w, "10.0.0.9", (v) => got.push(v));
      c.settleAll();
      await tick();
    }
    expect(got).toEqual([{ ok: true }, { ok: false, limit: "ip", count: 1 }]);
    c.release(0, 0);
    c.settle();
    expect(c.ledger.locked).toEqual([]); // nothing kept for an address with no connection
    c.admit(1, "10.0.0.9", (v) => got.push(v));
    c.settleAll();
    await tick();
    expect(got[2]).toEqual({ ok: true });
  });

  test("a key is unlocked once every worker is below its share again, and then costs no message", async () => {
    const c = new Cluster({ limitConnections: 0, maxFromIp: 20 }, 2);
    for (let i = 0; i < 11; i++) c.admit(0, "10.0.0.1");
    c.settleAll();
    await tick();
    expect(c.ledger.locked).toEqual(["10.0.0.1"]);
    expect(c.gates[1]!.isLocked("10.0.0.1")).toBe(true);
    c.release(0, 0);
    c.settle();
    expect(c.ledger.locked).toEqual(["10.0.0.1"]); // 10: still at the share
    c.release(0, 0);
    c.settle();
    expect(c.ledger.locked).toEqual([]);
    expect(c.gates[0]!.isLocked("10.0.0.1") || c.gates[1]!.isLocked("10.0.0.1")).toBe(false);
    const before = c.sent;
    c.admit(1, "10.0.0.1");
    expect(c.sent).toBe(before);
  });

  test("a worker that dies takes its connections with it; one that joins starts with the locked keys", async () => {
    const c = new Cluster({ limitConnections: 4, maxFromIp: 0 }, 2);
    for (const w of [0, 0, 0, 1]) {
      c.admit(w, "10.0.0.1");
      c.settleAll();
      await tick();
    }
    expect(c.ledger.count(TOTAL)).toBe(4);
    c.ledger.leave(0);
    c.open[0] = [];
    // The survivor's one connection is below its share: the total is unlocked.
    expect(c.ledger.count(TOTAL)).toBeUndefined();
    // The replacement takes worker 0's place in the simulation, locked as the others are.
    c.gates[0] = new WorkerGate({ limitConnections: 4, maxFromIp: 0, workers: 2, send: (m) => c.up[0]!.push(m) });
    c.up[0] = [];
    c.down[0] = [];
    c.gates[0].hello(c.ledger.join(0));
    expect(c.gates[0].isLocked(TOTAL)).toBe(c.ledger.locked.includes(TOTAL));
    const got: Verdict[] = [];
    for (let i = 0; i < 4; i++) {
      c.admit(0, "10.0.0.2", (v) => got.push(v));
      c.settleAll();
      await tick();
    }
    expect(got.map((v) => v.ok)).toEqual([true, true, true, false]);
    expect(c.total()).toBe(4);
  });

  test("sequential connections (every message delivered in between) get one process's answers", async () => {
    for (const seed of [1, 2, 3]) {
      const random = rng(seed);
      const limits = { limitConnections: 7, maxFromIp: 3 };
      const c = new Cluster(limits, 3);
      const oracle = new LocalGate(limits);
      const ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];
      for (let step = 0; step < 400; step++) {
        const w = Math.floor(random() * 3);
        if (random() < 0.55) {
          const ip = ips[Math.floor(random() * ips.length)]!;
          let got: Verdict | undefined;
          c.admit(w, ip, (v) => (got = v));
          c.settleAll();
          await tick();
          c.settleAll();
          expect(got).toEqual(oracle.admit(ip));
        } else if (c.open[w]!.length) {
          const i = Math.floor(random() * c.open[w]!.length);
          oracle.release(c.open[w]![i]!);
          c.release(w, i);
          c.settle();
        }
      }
    }
  });

  test("any interleaving: never more than -c in all or -m from one address", async () => {
    for (
      const [seed, workers, limitConnections, maxFromIp] of [[11, 2, 5, 2], [12, 3, 10, 4], [13, 4, 6, 1], [14, 2, 20, 20], [15, 3, 2, 0]]
    ) {
      const random = rng(seed!);
      const c = new Cluster({ limitConnections: limitConnections!, maxFromIp: maxFromIp! }, workers!);
      const ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
      let admitted = 0;
      let refused = 0;
      for (let step = 0; step < 3000; step++) {
        const r = random();
        const w = Math.floor(random() * workers!);
        if (r < 0.3) {
          c.admit(w, ips[Math.floor(random() * ips.length)]!, (v) => (v.ok ? admitted++ : refused++));
        } else if (r < 0.45) {
          if (c.open[w]!.length) c.release(w, Math.floor(random() * c.open[w]!.length));
        } else if (r < 0.47) {
          c.expire();
        } else {
          c.deliver(Math.floor(random() * workers! * 2));
        }
        if (step % 50 === 0) await tick();
        if (limitConnections) expect(c.total()).toBeLessThanOrEqual(limitConnections);
        if (maxFromIp) { for (const ip of ips) expect(c.from(ip)).toBeLessThanOrEqual(maxFromIp); }
      }
      c.settleAll();
      await tick();
      expect(admitted).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
      // Whatever happened, the primary's exact counts agree with the connections held.
      if (limitConnections && c.ledger.count(TOTAL) !== undefined) expect(c.ledger.count(TOTAL)).toBe(c.total());
    }
  });

  test("a refusal waits for a close in flight: a client that quits and comes back at once is not refused", async () => {
    const c = new Cluster({ limitConnections: 0, maxFromIp: 1 }, 2);
    c.admit(0, "10.0.0.1");
    c.settleAll();
    await tick();
    c.release(0, 0); // its "closed" is on the way...
    const got: Verdict[] = [];
    c.admit(1, "10.0.0.1", (v) => got.push(v));
    c.deliver(1); // ...and the new connection's request arrives first
    expect(c.ledger.count("10.0.0.1")).toBe(1);
    expect(c.down[1]).toEqual([]); // held, not refused
    c.settle(); // the close arrives: granted, with no timer run
    await tick();
    expect(got).toEqual([{ ok: true }]);
    // With no close to come, the grace ends in a refusal.
    c.admit(0, "10.0.0.1", (v) => got.push(v));
    c.settle();
    await tick();
    expect(got.length).toBe(1);
    c.settleAll(); // the grace runs out
    await tick();
    expect(got[1]).toEqual({ ok: false, limit: "ip", count: 1 });
  });

  test("the shares are each worker's part of the limit, rounded down", () => {
    expect(shareOf(1000, 2)).toBe(500);
    expect(shareOf(3, 2)).toBe(1);
    expect(shareOf(1, 2)).toBe(0);
  });
});
