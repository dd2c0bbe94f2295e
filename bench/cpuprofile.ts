/**
 * Self time by function from a `.cpuprofile` (Bun's `--cpu-prof`): `bun bench/cpuprofile.ts FILE
 * [N]` prints the top N. Bun's sampler also counts time the thread was not running (waiting in
 * the event loop, or descheduled in a write that woke the client) against the last function it
 * ran, typically `writeBuffered`; profile bench/engine.ts, which never waits, for CPU only.
 * @module
 */
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** [function and place, self ms] sorted by self time, and the total sampled ms. */
export function selfTimes(file: string): { rows: Array<[string, number]>; totalMs: number } {
  const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const f = byId.get(prof.samples[i]!)!.callFrame;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const where = f.url ? `${relative(ROOT, f.url.replace(/^file:\/\//, ""))}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return { rows: [...self].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / 1000]), totalMs: total / 1000 };
}

export function printTop(file: string, n: number): void {
  const { rows, totalMs } = selfTimes(file);
  console.log(`${file}: ${totalMs.toFixed(0)} ms sampled`);
  console.log(`${"self ms".padStart(8)} ${"%".padStart(5)}  function`);
  for (const [k, ms] of rows.slice(0, n)) {
    console.log(`${ms.toFixed(0).padStart(8)} ${((100 * ms) / totalMs).toFixed(1).padStart(5)}  ${k}`);
  }
}

if (import.meta.main) printTop(process.argv[2] ?? "", Number(process.argv[3] ?? 10));
