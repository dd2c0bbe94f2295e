/**
 * Counters, gauges and histograms, and Prometheus' text exposition format (version 0.0.4).
 * A `Metrics` holds one process's values; `snapshot()` is plain data, so the values of several
 * worker processes can be sent to one place and added up (`mergeSnapshots`) before `exposition`.
 * @module
 */

export type Labels = Readonly<Record<string, string>>;

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  /** Histogram upper bounds, ascending (+Inf implied). */
  readonly buckets?: readonly number[];
  /** Series by their label key: counters and gauges a number, histograms counts per bucket, sum and count. */
  readonly series: Map<string, Series>;
}

interface Series {
  readonly labels: Labels;
  value: number;
  /** Histograms: observations per bucket (not cumulative), and the sum. */
  counts?: number[];
  sum?: number;
}

/** What `snapshot()` returns: JSON-safe, mergeable. */
export interface Snapshot {
  readonly families: ReadonlyArray<{
    readonly name: string;
    readonly help: string;
    readonly kind: Kind;
    readonly buckets?: readonly number[];
    readonly series: ReadonlyArray<{ readonly labels: Labels; readonly value: number; readonly counts?: number[]; readonly sum?: number }>;
  }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Seconds: from 1 ms to 30 s, for hook and plugin calls. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function keyOf(labels: Labels): string {
  // Most counts have no label or one (they run per connection, command or chunk): no sort for those.
  let first: string | undefined;
  let more = false;
  for (const k in labels) {
    if (first === undefined) first = k;
    else {
      more = true;
      break;
    }
  }
  if (first === undefined) return "";
  if (!more) return `${first}\u0000${labels[first]}`;
  return Object.keys(labels).sort().map((k) => `${k}\u0000${labels[k]}`).join("\u0001");
}

export class Counter {
  readonly #f: Family;
  constructor(f: Family) {
    this.#f = f;
  }
  inc(labels: Labels = {}, by = 1): void {
    seriesOf(this.#f, labels).value += by;
  }

  /** The series of `labels`, to count into without looking it up again (hot paths). */
  child(labels: Labels): { inc(by?: number): void } {
    const s = seriesOf(this.#f, labels);
    return { inc: (by = 1) => void (s.value += by) };
  }
}

export class Gauge {
  readonly #f: Family;
  constructor(f: Family) {
    this.#f = f;
  }
  set(value: number, labels: Labels = {}): void {
    seriesOf(this.#f, labels).value = value;
  }
  inc(labels: Labels = {}, by = 1): void {
    seriesOf(this.#f, labels).value += by;
  }
  dec(labels: Labels = {}, by = 1): void {
    seriesOf(this.#f, labels).value -= by;
  }
}

export class Histogram {
  readonly #f: Family;
  constructor(f: Family) {
    this.#f = f;
  }
  observe(value: number, labels: Labels = {}): void {
    observeInto(seriesOf(this.#f, labels), this.#f.buckets!, value);
  }

  /** The series of `labels`, to observe into without looking it up again (hot paths). */
  child(labels: Labels): { observe(value: number): void } {
    const s = seriesOf(this.#f, labels);
    const b = this.#f.buckets!;
    return { observe: (value) => observeInto(s, b, value) };
  }
}

function observeInto(s: Series, b: readonly number[], value: number): void {
  let i = 0;
  while (i < b.length && value > b[i]!) i++;
  s.counts![i]!++;
  s.sum! += value;
  s.value++;
}

function seriesOf(f: Family, labels: Labels): Series {
  const key = keyOf(labels);
  let s = f.series.get(key);
  if (!s) {
    for (const k of Object.keys(labels)) if (!LABEL.test(k)) throw new Error(`metric ${f.name}: bad label name "${k}"`);
    s = { labels: { ...labels }, value: 0 };
    if (f.kind === "histogram") {
      s.counts = new Array<number>(f.buckets!.length + 1).fill(0);
      s.sum = 0;
    }
    f.series.set(key, s);
  }
  return s;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  #family(name: string, help: string, kind: Kind, buckets?: readonly number[]): Family {
    if (!NAME.test(name)) throw new Error(`bad metric name "${name}"`);
    const had = this.#families.get(name);
    if (had) {
      if (had.kind !== kind) throw new Error(`metric ${name} is a ${had.kind}`);
      return had;
    }
    const f: Family = { name, help, kind, series: new Map(), ...(buckets ? { buckets: [...buckets] } : {}) };
    this.#families.set(name, f);
    return f;
  }

  counter(name: string, help: string): Counter {
    return new Counter(this.#family(name, help, "counter"));
  }

  gauge(name: string, help: string): Gauge {
    return new Gauge(this.#family(name, help, "gauge"));
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS): Histogram {
    return new Histogram(this.#family(name, help, "histogram", buckets));
  }

  snapshot(): Snapshot {
    return snapshotOf(this.#families.values());
  }
}

function snapshotOf(families: Iterable<Family>): Snapshot {
  return {
    families: [...families].map((f) => ({
      name: f.name,
      help: f.help,
      kind: f.kind,
      ...(f.buckets ? { buckets: f.buckets } : {}),
      series: [...f.series.values()].map((s) => ({
        labels: s.labels,
        value: s.value,
        ...(s.counts ? { counts: [...s.counts], sum: s.sum! } : {}),
      })),
    })),
  };
}

/** Adds up snapshots of several processes (gauges too: open connections add up across workers). */
export function mergeSnapshots(snapshots: readonly Snapshot[]): Snapshot {
  const fams = new Map<string, Family>();
  for (const snap of snapshots) {
    for (const f of snap.families) {
      let into = fams.get(f.name);
      if (!into) {
        into = { name: f.name, help: f.help, kind: f.kind, series: new Map(), ...(f.buckets ? { buckets: f.buckets } : {}) };
        fams.set(f.name, into);
      }
      for (const s of f.series) {
        const t = seriesOf(into, s.labels);
        t.value += s.value;
        if (s.counts && t.counts) {
          s.counts.forEach((c, i) => (t.counts![i] = (t.counts![i] ?? 0) + c));
          t.sum! += s.sum ?? 0;
        }
      }
    }
  }
  return snapshotOf(fams.values());
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}="${escapeLabel(labels[k]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

/** The text exposition format: HELP, TYPE and the samples of every family. */
export function exposition(snapshot: Snapshot): string {
  let out = "";
  for (const f of snapshot.families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.kind}\n`;
    for (const s of f.series) {
      if (f.kind !== "histogram") {
        out += `${f.name}${labelText(s.labels)} ${num(s.value)}\n`;
        continue;
      }
      let cumulative = 0;
      const bounds = [...f.buckets!, Infinity];
      bounds.forEach((b, i) => {
        cumulative += s.counts![i] ?? 0;
        out += `${f.name}_bucket${labelText(s.labels, ["le", num(b)])} ${cumulative}\n`;
      });
      out += `${f.name}_sum${labelText(s.labels)} ${num(s.sum ?? 0)}\n`;
      out += `${f.name}_count${labelText(s.labels)} ${s.value}\n`;
    }
  }
  return out;
}
