/**
 * Where the daemon's CPU goes, the kernel's share included: `perf record` on dist/qpsmtpd (one
 * worker, the benchmark set, logging/file at LOGINFO) and on the floor (bench/floor.ts), each
 * warmed up as `make bench` warms them, under the bold profile. Prints, per message, each one's
 * CPU in the kernel, in the runtime's own code (Bun and JavaScriptCore, which have no symbols in
 * the executable), in JIT-compiled JavaScript and in libc; then the kernel functions where ours
 * spends most above the floor, and our JIT-compiled functions. The records have call chains, so
 * it also prints what each spent waking the client (`sock_def_readable` and below, in its sends):
 * a cost of being the slower side, as smtp-source then sleeps until each reply comes. Bun's
 * `--cpu-prof` sees none of the kernel and runtime time, and counts waiting as the last function's.
 *
 * JavaScriptCore writes a JITDump (`BUN_JSC_useJITDump`), turned here into perf's
 * /tmp/perf-PID.map so the JIT code has names; code that JavaScriptCore did not name shows as
 * `<name not materialized>#hash`, the hash the same in every tier of one function.
 *
 *   bun bench/perf.ts [--messages N] [--top N] [--keep]
 *
 * Needs perf (Debian: linux-perf) and permission to attach to a process (root, or
 * kernel.perf_event_paranoid at most 1). `--keep` keeps the perf data in a temp dir.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_SET, type Server, smtpSource, type SourceRun, startFloor, startOurs, warmUp, warmUpRun, writeBenchConfig } from "./procs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: { messages: { type: "string", default: "5000" }, top: { type: "string", default: "15" }, keep: { type: "boolean" } },
});
if (spawnSync("perf", ["--version"]).status !== 0) throw new Error("perf not found: apt-get install linux-perf");

const WARM = warmUpRun();
const BOLD: SourceRun = { ...WARM, messages: Number(values.messages) };
const top = Number(values.top);
const work = mkdtempSync(join(tmpdir(), "qpperf-"));
const config = writeBenchConfig(join(work, "config"), [...BENCH_SET, "queue/discard"], join(work, "qpsmtpd.log"));

/** CPU nanoseconds by where they were spent, and by function. */
interface Profile {
  readonly byPart: Map<string, number>;
  readonly bySymbol: Map<string, number>;
  /** Share of all samples in waking the client: `sock_def_readable` with what it calls. */
  readonly wakingShare: number;
}

/** Warms `server` up, records it under the bold profile and reads the record back. */
async function record(server: Server, name: string): Promise<Profile> {
  await warmUp(server, WARM);
  const data = join(work, `${name}.data`);
  // cpu-clock samples carry their period in ns: their sum is the CPU time.
  const perf = spawn("perf", ["record", "-q", "-g", "-e", "cpu-clock", "-o", data, "-p", String(server.pid)], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 300)); // for perf to attach before the first message
  await smtpSource(server.port, BOLD);
  perf.kill("SIGINT");
  await new Promise((r) => perf.once("exit", r));
  const map = jitMap(server.pid);
  try {
    return read(data);
  } finally {
    if (map) rmSync(map, { force: true });
  }
}

/** Writes /tmp/perf-PID.map from the JITDump of `pid` (in `work`), for perf to name JIT code. */
function jitMap(pid: number): string | undefined {
  for (const f of readdirSync(work).filter((f) => /^jit-.*\.dump$/.test(f))) {
    const b = readFileSync(join(work, f));
    if (b.length < 40 || b.readUInt32LE(20) !== pid) continue; // the header's pid
    const lines: string[] = [];
    // Records after the header: id, size, time stamp; a code load (id 0) then has pid, tid,
    // vma, code address, code size, code index and the name, NUL-terminated.
    for (let o = b.readUInt32LE(8); o + 16 <= b.length;) {
      const id = b.readUInt32LE(o);
      const size = b.readUInt32LE(o + 4);
      if (size === 0) break;
      if (id === 0 && o + 56 < b.length) {
        const name = b.toString("utf8", o + 56, b.indexOf(0, o + 56));
        lines.push(`${b.readBigUInt64LE(o + 32).toString(16)} ${b.readBigUInt64LE(o + 40).toString(16)} ${name}`);
      }
      o += size;
    }
    const path = `/tmp/perf-${pid}.map`;
    writeFileSync(path, lines.join("\n") + "\n");
    return path;
  }
  return undefined;
}

function read(data: string): Profile {
  const out = spawnSync(
    "perf",
    ["report", "-i", data, "--no-children", "--stdio", "-g", "none", "--sort", "dso,sym", "-F", "period,dso,sym", "-t", "\t"],
    { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
  ).stdout;
  const byPart = new Map<string, number>();
  const bySymbol = new Map<string, number>();
  for (const line of out.split("\n")) {
    if (line.startsWith("#") || !line.trim()) continue;
    const [period, dso = "", sym = ""] = line.split("\t").map((s) => s.trim());
    const ns = Number(period);
    if (!Number.isFinite(ns)) continue;
    const part = dso === "[kernel.kallsyms]"
      ? "kernel"
      : dso.startsWith("[JIT]")
      ? "JIT-compiled JavaScript"
      : dso.startsWith("libc")
      ? "libc"
      : dso === "qpsmtpd" || dso === basename(process.execPath)
      ? "runtime (Bun, JavaScriptCore)"
      : "other";
    byPart.set(part, (byPart.get(part) ?? 0) + ns);
    // One function over the JIT's tiers: "JSC-FTL: name#hash" and "JSC-DFG: name#hash" are one.
    const key = `${part === "kernel" ? "[k]" : part.startsWith("JIT") ? "[js]" : "[.]"} ${
      sym.replace(/^\[.\] /, "").replace(/^JSC-\w+: /, "")
    }`;
    bySymbol.set(key, (bySymbol.get(key) ?? 0) + ns);
  }
  return { byPart, bySymbol, wakingShare: inclusiveShare(data, "sock_def_readable") };
}

/** The share (0-1) of the samples in `data` with kernel function `sym` on their stack. */
function inclusiveShare(data: string, sym: string): number {
  const out = spawnSync("perf", ["report", "-i", data, "--children", "--stdio", "-g", "none", "--sort", "sym", "--percent-limit", "0"], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  }).stdout;
  // "    5.33%     0.16%  [k] sock_def_readable": with children, then self.
  const line = out.split("\n").find((l) => l.trimEnd().endsWith(`[k] ${sym}`));
  return line ? Number(line.trim().split("%")[0]) / 100 : 0;
}

process.env["BUN_JSC_useJITDump"] = "1";
process.env["BUN_JSC_jitDumpDirectory"] = work;
const ours = await startOurs(
  join(ROOT, "dist/qpsmtpd"),
  config,
  ["-c", "1000", "-m", "1000", "--workers", "1"],
  join(work, "qpsmtpd.stderr"),
  work,
);
delete process.env["BUN_JSC_useJITDump"];
delete process.env["BUN_JSC_jitDumpDirectory"];
const floor = await startFloor(process.execPath);
let profiles: [Profile, Profile];
try {
  profiles = [await record(ours, "ours"), await record(floor, "floor")];
} finally {
  await ours.stop();
  await floor.stop();
}
const [o, f] = profiles;
const n = BOLD.messages;
const ms = (ns: number | undefined): string => ((ns ?? 0) / 1e6 / n).toFixed(3).padStart(7);
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

console.log(`bold profile (20 sessions, 4 KB, 5 rcpts, a new connection per message), ${n} messages; CPU ms per message`);
console.log(`${"".padEnd(32)}    ours   floor`);
for (const part of ["kernel", "runtime (Bun, JavaScriptCore)", "JIT-compiled JavaScript", "libc", "other"]) {
  console.log(`${part.padEnd(32)} ${ms(o.byPart.get(part))} ${ms(f.byPart.get(part))}`);
}
console.log(`${"total".padEnd(32)} ${ms(sum(o.byPart))} ${ms(sum(f.byPart))}`);
console.log(`${"kernel, waking the client".padEnd(32)} ${ms(o.wakingShare * sum(o.byPart))} ${ms(f.wakingShare * sum(f.byPart))}`);

const kernelAbove = [...o.bySymbol].filter(([k]) => k.startsWith("[k]"))
  .map(([k, v]): [string, number, number] => [k, v, f.bySymbol.get(k) ?? 0])
  .sort((a, b) => b[1] - b[2] - (a[1] - a[2]));
console.log(`\nkernel functions, most above the floor: ours, floor (ms per message)`);
for (const [k, v, fl] of kernelAbove.slice(0, top)) console.log(`${ms(v)} ${ms(fl)}  ${k}`);

console.log(`\nours, the functions with the most CPU (JIT-compiled: [js]; runtime code without symbols: [.] address)`);
for (const [k, v] of [...o.bySymbol].filter(([k]) => !k.startsWith("[k]")).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(v)}  ${k}`);
}
if (values.keep) console.log(`\nperf data and JITDump in ${work}`);
else rmSync(work, { recursive: true, force: true });
process.exit(0);
