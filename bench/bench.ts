/**
 * `make bench`: dist/qpsmtpd against Postfix's smtp-sink (a C server that does nothing) in the
 * same run, driven by Postfix's smtp-source on loopback. Each profile prints our messages/s,
 * smtp-sink's, the ratio, and each server's own CPU milliseconds per message (utime+stime from
 * /proc/PID/stat, summed over the process tree when there are workers). Not a test: the numbers
 * depend on the machine and its load, so compare ratios within one run. The figures the issue's
 * targets read (per-connection overhead, the bold profile's CPU and ratio, N workers against one)
 * are medians of REPEATS runs of the profile on the same server; the rows show the first.
 *
 * Environment: BENCH_SCALE (1) scales message and connection counts; BENCH_BINARY measures
 * another build; BENCH_ONLY=group,... runs some groups only (bench, workers, sample, maildir,
 * chunking, idle, startup, auth, scanners, store); BENCH_RESULTS=path also writes the output there
 * (bench/run.sh sets bench/RESULTS.md for a full run at scale 1).
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chunkingClient, holdIdle, timeToGreeting } from "./clients.ts";
import {
  BENCH_SET,
  compilerCpu,
  COMPILING,
  countFiles,
  cpuMs,
  endedChildrenCpuMs,
  freePort,
  loadAverage,
  median,
  memKiB,
  processTree,
  type Server,
  smtpSource,
  type SourceRun,
  startFloor,
  startOurs,
  startSink,
  tail,
  warmUp,
  warmUpRun,
  writeBenchConfig,
} from "./procs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const scale = Number(process.env["BENCH_SCALE"] ?? 1);
if (!(scale > 0)) throw new Error(`BENCH_SCALE must be a positive number, not ${process.env["BENCH_SCALE"]}`);
const binary = resolve(ROOT, process.env["BENCH_BINARY"] ?? "dist/qpsmtpd");
const only = process.env["BENCH_ONLY"]?.split(",").map((s) => s.trim()).filter(Boolean);
const wanted = (group: string): boolean => !only || only.includes(group);
const cores = availableParallelism();
/** `--workers` exists once the daemon has workers (node:cluster); before that, one process. */
const hasWorkers = execFileSync(binary, ["--help"], { encoding: "utf8" }).includes("--workers");
const work = mkdtempSync(join(tmpdir(), "qpbench-"));
const output: string[] = [];
let sink: Server | undefined;
const stops: Array<() => Promise<void>> = [];

const n = (messages: number): number => Math.max(1, Math.round(messages * scale));

function say(line = ""): void {
  output.push(line);
  process.stdout.write(`${line}\n`);
}

// ---- configuration ------------------------------------------------------------------------

/** A config directory with the benchmark basics and `plugins` (see writeBenchConfig). */
function benchConfig(name: string, plugins: string[], extra: Record<string, string> = {}): string {
  return writeBenchConfig(join(work, `config-${name}`), plugins, join(work, "log", `${name}.log`), extra);
}

/** qpsmtpd's sample set as shipped, earlytalker without its wait, DNS from a local server. */
function sampleConfig(dnsPort: number): string {
  const dir = join(work, "config-sample");
  cpSync(join(ROOT, "config"), dir, { recursive: true });
  rmSync(join(dir, "smtpd.yaml"), { force: true });
  const plugins = readFileSync(join(ROOT, "config", "plugins"), "utf8").split("\n")
    .map((l) => (l === "earlytalker" ? "earlytalker wait 0" : l))
    .filter((l) => !l.startsWith("queue/"));
  writeFileSync(join(dir, "plugins"), [...plugins, "queue/discard", ""].join("\n"));
  writeFileSync(join(dir, "dns_servers"), `127.0.0.1:${dnsPort}\n`);
  writeFileSync(join(dir, "logging"), `logging/file loglevel LOGINFO ${join(work, "log", "sample.log")}\n`);
  return dir;
}

// ---- measuring ----------------------------------------------------------------------------

interface Measured {
  rate: number;
  cpu: number;
  peakMiB: number;
  /** smtp-source's own CPU ms per message (it runs on the same cores); not for the in-process BDAT client. */
  clientCpu?: number;
  /** Of `cpu`, what the server's JIT compiler threads took (under COMPILING of it once warmed up); smtp-source runs only. */
  compiling?: number;
}

/** Resets the peak RSS (VmHWM) of every process of a server, so a profile's peak is its own. */
function resetPeak(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, "5");
    } catch { /* not ours, or gone */ }
  }
}

/**
 * Measures `run` on a running server: first a short run of the same shape (connections, JIT),
 * then the peak RSS is reset and the run measured.
 */
async function measure(server: Server, run: SourceRun): Promise<Measured> {
  await smtpSource(server.port, { ...run, messages: Math.max(run.sessions * 2, Math.round(run.messages / 20)) });
  resetPeak(server.pid);
  const c0 = cpuMs(server.pid);
  const client0 = endedChildrenCpuMs();
  const compiled = compilerCpu(server.pid);
  const secs = await smtpSource(server.port, run);
  const cpu = (cpuMs(server.pid) - c0) / run.messages;
  const clientCpu = (endedChildrenCpuMs() - client0) / run.messages;
  const compiling = compiled() / run.messages;
  return { rate: run.messages / secs, cpu, peakMiB: memKiB(server.pid, "VmHWM") / 1024, clientCpu, compiling };
}

/** How many times the figures the targets read are measured (the rows show the first): medians of these. */
const REPEATS = 5;

const spread = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(" ");
/** Each run's messages/s of `r`. */
const eachRate = (r: { rates: readonly number[] }): string => r.rates.map((x) => x.toFixed(0)).join(" ");

/**
 * The per-connection overhead (row 1's CPU minus row 2's) REPEATS times, the rows run in turn, the
 * first pair being the rows already measured: a difference of two short runs moves by a third
 * from one run to the next on a quiet machine, their median far less.
 */
async function perConnection(server: Server, p1: Profile, p2: Profile, first: [Measured, Measured]): Promise<number[]> {
  const all = [first[0].cpu - first[1].cpu];
  while (all.length < REPEATS) {
    const a = await measure(server, p1);
    const b = await measure(server, p2);
    all.push(a.cpu - b.cpu);
  }
  return all;
}

interface Repeated {
  cpu: number;
  rate: number;
  rates: number[];
  /** How much of a core smtp-source had while it ran (its CPU per message times messages/s), median. */
  clientCores: number;
}

/** The bold profile REPEATS times (the first is the row's): its medians of CPU and rate, and each run's rate. */
async function boldRepeats(server: Server, p: Profile, first: Measured): Promise<Repeated> {
  const runs = [first];
  while (runs.length < REPEATS) runs.push(await measure(server, p));
  return {
    cpu: median(runs.map((r) => r.cpu)),
    rate: median(runs.map((r) => r.rate)),
    rates: runs.map((r) => r.rate),
    clientCores: median(runs.map((r) => (r.clientCpu! * r.rate) / 1000)),
  };
}

/** The warm-up batch (see warmUpRun); smtp-sink, compiled C, gets one batch. */
const WARM_UP = warmUpRun(scale);
/** Each warmed server: its name, the messages its warm-up took, the compiler threads' share in the last batch. */
const warmUps: Array<{ name: string; messages: number; compiling: number }> = [];

/** Serves WARM_UP batches until the JIT is done compiling, and notes what it took. */
async function warmUpNamed(server: Server, name: string): Promise<void> {
  const w = await warmUp(server, WARM_UP);
  warmUps.push({ name, messages: w.batches * WARM_UP.messages, compiling: w.compiling });
}

interface Profile extends SourceRun {
  readonly label: string;
  /** Print the peak RSS (the issue asks for it on the 100 KB profile). */
  readonly rss?: boolean;
}

/** The issue's four profiles: a new connection per message unless `keep`. */
function mainProfiles(): Profile[] {
  return [
    { label: "1 session, 4 KB, new connection per message", sessions: 1, messages: n(2000), size: 4096, rcpts: 1, keep: false },
    { label: "1 session, 4 KB, one connection (-d)", sessions: 1, messages: n(2000), size: 4096, rcpts: 1, keep: true },
    { label: "20 sessions, 4 KB, 5 rcpts, new conn. (bold)", sessions: 20, messages: n(10000), size: 4096, rcpts: 5, keep: false },
    { label: "50 sessions, 100 KB, new connection", sessions: 50, messages: n(2000), size: 102400, rcpts: 1, keep: false, rss: true },
  ];
}

const COLS = `${"profile".padEnd(46)} ${"msgs".padStart(6)} ${"ours/s".padStart(8)} ${"sink/s".padStart(8)} ${"ratio".padStart(6)} ${
  "ours ms".padStart(8)
} ${"sink ms".padStart(8)} ${"peak RSS".padStart(9)}`;

function row(p: Profile, ours: Measured, theirs: Measured | undefined, extra = ""): void {
  const f = (x: number, d = 0) => x.toFixed(d);
  say(
    `${p.label.padEnd(46)} ${String(p.messages).padStart(6)} ${f(ours.rate).padStart(8)} ${(theirs ? f(theirs.rate) : "-").padStart(8)} ${
      (theirs ? f(ours.rate / theirs.rate, 2) : "-").padStart(6)
    } ${f(ours.cpu, 2).padStart(8)} ${(theirs ? f(theirs.cpu, 2) : "-").padStart(8)} ${
      (p.rss ? `${f(ours.peakMiB)} MB` : "").padStart(9)
    }${extra}`,
  );
}

/** Runs `fn` with a qpsmtpd started on `config` and warmed up (see warmUp), then stops it. */
async function withOurs<T>(config: string, args: string[], name: string, fn: (s: Server) => Promise<T>, warm = true): Promise<T> {
  const log = join(work, "log", `${name.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 80)}.stderr`);
  const s = await startOurs(binary, config, args, log, work);
  try {
    if (warm) await warmUpNamed(s, name);
    return await fn(s);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- server log (${name}):\n${tail(log)}`);
  } finally {
    await s.stop();
  }
}

const workerArgs = (w: number): string[] => (hasWorkers ? ["--workers", String(w)] : []);

/** Runs `profiles` against one qpsmtpd (one worker) and the shared smtp-sink, back to back. */
async function group(title: string, config: string, profiles: Profile[], check?: (p: Profile) => string): Promise<void> {
  say();
  say(`== ${title}${hasWorkers ? ", 1 worker" : ""}`);
  say(COLS);
  await withOurs(config, ["-c", "1000", "-m", "1000", ...workerArgs(1)], title, async (server) => {
    for (const p of profiles) {
      const ours = await measure(server, p);
      const theirs = sink ? await measure(sink, p) : undefined;
      row(p, ours, theirs, check ? `  ${check(p)}` : "");
    }
  });
}

/**
 * The same 4 KB profiles against bench/floor.ts, which answers SMTP and does nothing else: what the
 * kernel and Bun's sockets cost by themselves on this machine, and what is left for our code.
 */
async function floorRow(profiles: Profile[], oursPerConnection: number, oursBold: number): Promise<void> {
  const floor = await startFloor(process.execPath);
  try {
    await warmUpNamed(floor, "floor");
    const [p1, p2, p3] = profiles as [Profile, Profile, Profile];
    const pc = await perConnection(floor, p1, p2, [await measure(floor, p1), await measure(floor, p2)]);
    const bold = await boldRepeats(floor, p3, await measure(floor, p3));
    say(
      `floor (bench/floor.ts: SMTP answered, nothing checked or kept, on Bun's sockets), medians as ours: CPU ${
        bold.cpu.toFixed(2)
      } ms/msg bold ` +
        `(ours ${(oursBold - bold.cpu).toFixed(2)} above it), per connection ${median(pc).toFixed(2)} ms (${spread(pc)}; ` +
        `ours ${(oursPerConnection - median(pc)).toFixed(2)} above it)`,
    );
  } finally {
    await floor.stop();
  }
}

/**
 * The most N workers can gain here: smtp-source runs on the same cores, so each message costs
 * the cores our CPU and its CPU, and N cores carry at most N / (ours + its) messages a second.
 * One worker is held by its one core (the bold profile keeps it busy), so the cheaper our
 * message, the larger smtp-source's share of the cores and the smaller the most N can gain.
 */
function ceiling(workers: number, one: Measured, many: Measured): string {
  const client = (one.clientCpu! + many.clientCpu!) / 2;
  // smtp-source is one process too: it can send at most 1000 / its CPU messages a second.
  const most = (cpu: number) => Math.min((workers * 1000) / (cpu + client), 1000 / client) / one.rate;
  return `the ${workers} cores allow at most ${most(one.cpu).toFixed(2)}x here: smtp-source takes ${client.toFixed(2)} ms of CPU ` +
    `per message, ours ${one.cpu.toFixed(2)} with 1 worker (${most(many.cpu).toFixed(2)}x at the ${many.cpu.toFixed(2)} ms ` +
    `of ${workers} workers); 1.5x needs smtp-source at most ${(one.cpu * (workers - 1.5) / 1.5).toFixed(2)} ms`;
}

/**
 * What N processes gain over one here with nothing of ours in them: the floor on our socket
 * layer, one process against N node:cluster workers sharing the port as ours do, the bold
 * profile, medians of REPEATS runs. Set beside ours, it shows which part of the workers' ratio is
 * the machine's (smtp-source on the same cores, the kernel, the runtime) and which is ours.
 */
async function floorWorkers(workers: number, bold: Profile): Promise<void> {
  const runs: Repeated[] = [];
  for (const w of [1, workers]) {
    const floor = await startFloor(process.execPath, true, w);
    try {
      await warmUpNamed(floor, floor.name);
      runs.push(await boldRepeats(floor, bold, await measure(floor, bold)));
    } finally {
      await floor.stop();
    }
  }
  const [a, b] = runs as [Repeated, Repeated];
  say(
    `the floor on our socket layer, ${workers} workers vs 1 on the bold profile: ${(b.rate / a.rate).toFixed(2)}x ` +
      `(msgs/s, 1: ${eachRate(a)}; ${workers}: ${eachRate(b)}; ` +
      `CPU ${a.cpu.toFixed(2)} and ${b.cpu.toFixed(2)} ms/msg)`,
  );
}

// ---- groups -------------------------------------------------------------------------------

async function benchGroups(): Promise<void> {
  const profiles = mainProfiles();
  const config = benchConfig("bench", [...BENCH_SET, "queue/discard"]);
  // smtp-sink's own figures, measured once per profile and reused for each worker count.
  const sinkBy = new Map<string, Measured>();
  const measureSink = sink;
  let one: Map<string, Measured> | undefined;
  let oneBold: Repeated | undefined;
  for (const workers of [1, ...(hasWorkers && wanted("workers") ? [cores] : [])]) {
    if (workers === 1 && !wanted("bench")) continue;
    say();
    say(
      `== benchmark set (${BENCH_SET.join(" ")} queue/discard; empty zone lists; logging/file at LOGINFO)${
        hasWorkers ? `, ${workers} worker${workers > 1 ? "s" : ""}` : ""
      }`,
    );
    say(COLS + (one ? "  vs 1 worker" : ""));
    const results = new Map<string, Measured>();
    const [p1, p2, p3] = profiles as [Profile, Profile, Profile];
    const repeated = await withOurs(config, ["-c", "1000", "-m", "1000", ...workerArgs(workers)], `bench-${workers}`, async (server) => {
      for (const p of profiles) {
        const ours = await measure(server, p);
        if (measureSink && !sinkBy.has(p.label)) sinkBy.set(p.label, await measure(measureSink, p));
        const base = one?.get(p.label);
        row(p, ours, sinkBy.get(p.label), base ? `  ${(ours.rate / base.rate).toFixed(2)}x` : "");
        results.set(p.label, ours);
      }
      return {
        perConnection: await perConnection(server, p1, p2, [results.get(p1.label)!, results.get(p2.label)!]),
        bold: await boldRepeats(server, p3, results.get(p3.label)!),
      };
    });
    const sinkBold = sinkBy.get(p3.label);
    const pc = repeated.perConnection;
    say(
      `per-connection overhead (row 1 - row 2 CPU): ${median(pc).toFixed(2)} ms, median of ${pc.length} pairs (${
        spread(pc)
      }) (target <= 0.2)`,
    );
    const ratio = sinkBold ? ` ratio ${(repeated.bold.rate / sinkBold.rate).toFixed(2)} (target >= 0.5),` : "";
    say(`bold profile, median of ${REPEATS} runs:${ratio} CPU ${repeated.bold.cpu.toFixed(2)} ms/msg (target <= 0.5)`);
    if (workers === 1) {
      await floorRow(profiles, median(pc), repeated.bold.cpu);
      one = results;
      oneBold = repeated.bold;
    } else if (one && oneBold) {
      const m = repeated.bold;
      say(
        `${workers} workers vs 1 on the bold profile: ${(m.rate / oneBold.rate).toFixed(2)}x, medians of ${REPEATS} runs each ` +
          `(msgs/s, 1 worker: ${eachRate(oneBold)}; ${workers}: ${eachRate(m)}) (target >= 1.5)`,
      );
      say(ceiling(workers, { ...one.get(p3.label)!, cpu: oneBold.cpu, rate: oneBold.rate }, { ...results.get(p3.label)!, cpu: m.cpu }));
      say(
        `smtp-source had ${oneBold.clientCores.toFixed(2)} of a core with 1 worker, ${m.clientCores.toFixed(2)} with ${workers} ` +
          `(medians; ${workers + 1} busy processes on ${cores} cores get ${
            (cores / (workers + 1)).toFixed(2)
          } each when the scheduler shares evenly)`,
      );
      await floorWorkers(workers, p3);
    }
  }
  if (!hasWorkers && wanted("workers")) say(`(no N-worker rows: ${binary} --help has no --workers yet)`);
}

async function sampleGroup(): Promise<void> {
  const dns = spawn(process.execPath, [join(ROOT, "bench", "dns.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  stops.push(async () => void dns.kill());
  const dnsPort = await new Promise<number>((res) => dns.stdout!.once("data", (d: Buffer) => res(Number(d.toString().trim()))));
  const [, , bold, big] = mainProfiles();
  await group("qpsmtpd's sample set (config/plugins as shipped, queue/discard)", sampleConfig(dnsPort), [bold!, big!]);
}

async function maildirGroup(): Promise<void> {
  const maildir = join(work, "Maildir");
  const config = benchConfig("maildir", [...BENCH_SET, `queue/maildir ${maildir}`]);
  const [, , bold, big] = mainProfiles();
  // Each message is fsynced into new/ before its 250; count what arrived to be sure it was real.
  let before = 0;
  await group("benchmark set with queue/maildir (fsync before 250)", config, [bold!, big!], (p) => {
    const now = countFiles(join(maildir, "new"));
    const got = now - before;
    before = now;
    // The warm-up run delivered some too.
    return got >= p.messages ? `(${got} files in new/)` : `ONLY ${got} FILES IN new/ for ${p.messages} messages`;
  });
}

async function chunkingGroup(): Promise<void> {
  const config = benchConfig("chunking", [...BENCH_SET, "queue/discard"]);
  const label = (m: string) => `20 sessions, 4 KB, ${m}, new connection`;
  say();
  say("== BDAT next to DATA: a Bun client (smtp-source has no BDAT), envelope and chunk pipelined, benchmark set");
  say(COLS);
  for (const mode of ["data", "bdat"] as const) {
    const p: Profile = {
      label: label(mode === "bdat" ? "BDAT n LAST" : "DATA"),
      sessions: 20,
      messages: n(4000),
      size: 4096,
      rcpts: 1,
      keep: false,
    };
    const runOn = async (s: Server): Promise<Measured> => {
      await chunkingClient({ port: s.port, sessions: 20, messages: 200, size: 4096, mode });
      const c0 = cpuMs(s.pid);
      const secs = await chunkingClient({ port: s.port, sessions: p.sessions, messages: p.messages, size: p.size, mode });
      return { rate: p.messages / secs, cpu: (cpuMs(s.pid) - c0) / p.messages, peakMiB: memKiB(s.pid, "VmHWM") / 1024 };
    };
    const ours = await withOurs(config, ["-c", "1000", "-m", "1000", ...workerArgs(1)], `chunking-${mode}`, async (server) => {
      await chunkingClient({ port: server.port, sessions: 20, messages: WARM_UP.messages, size: 4096, mode });
      return runOn(server);
    }, false);
    const theirs = mode === "data" && sink ? await runOn(sink) : undefined;
    row(p, ours, theirs, mode === "bdat" ? "  (smtp-sink has no CHUNKING/BDAT)" : "");
  }
}

async function idleGroup(): Promise<void> {
  const count = Math.max(500, Math.round(10000 * Math.min(scale, 1)));
  say();
  say(
    `== ${count} idle connections held after EHLO (limits and timeouts as default); KiB per connection of the server's own memory ` +
      "(resident, but the executable's pages and other mapped files: each process of ours reads in more of its code as it serves, " +
      "shared with every process that runs it; shown apart)",
  );
  // -c above the count, so 75% of it (stress_threshold) is not reached and no read timeout shortens.
  const limit = String(Math.ceil(count * 1.5));
  const holdOn = async (s: Server): Promise<string> => {
    const warm = await holdIdle(s.port, 50);
    warm.close();
    await new Promise((r) => setTimeout(r, 500));
    const own = (): number => memKiB(s.pid, "RssAnon") + memKiB(s.pid, "RssShmem");
    const [own0, file0, rss0] = [own(), memKiB(s.pid, "RssFile"), memKiB(s.pid, "VmRSS")];
    const t0 = performance.now();
    const held = await holdIdle(s.port, count);
    const secs = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const [own1, file1, rss1] = [own(), memKiB(s.pid, "RssFile"), memKiB(s.pid, "VmRSS")];
    held.close();
    const per = held.open > 0 ? (own1 - own0) / held.open : NaN;
    const failed = held.failed ? `, ${held.failed} FAILED (${held.firstError})` : "";
    return `${per.toFixed(1).padStart(6)} KiB each, ${held.open} held in ${secs.toFixed(1)} s, RSS ${(rss0 / 1024).toFixed(0)} -> ${
      (rss1 / 1024).toFixed(0)
    } MB (mapped files ${((file1 - file0) / 1024).toFixed(1)} MB of it)${failed}`;
  };
  for (const w of [1, ...(hasWorkers ? [cores] : [])]) {
    const r = await withOurs(
      benchConfig("idle", [...BENCH_SET, "queue/discard"]),
      ["-c", limit, "-m", limit, ...workerArgs(w)],
      `idle-${w}`,
      holdOn,
      false,
    );
    say(`${`qpsmtpd${hasWorkers ? `, ${w} worker${w > 1 ? "s" : ""}` : ""}`.padEnd(24)} ${r}`);
  }
  const s = await startSink(count + 100);
  try {
    say(`${"smtp-sink".padEnd(24)} ${await holdOn(s)}`);
  } finally {
    await s.stop();
  }
}

async function startupGroup(): Promise<void> {
  // The shipped config, except that earlytalker holds the greeting for 1 s by design: that wait
  // is set to 0 here (as in the sample-set profile), so the 220 measures start-up alone.
  const dir = join(work, "config-startup");
  cpSync(join(ROOT, "config"), dir, { recursive: true });
  const plugins = readFileSync(join(dir, "plugins"), "utf8").split("\n").map((l) => (l === "earlytalker" ? "earlytalker wait 0" : l));
  writeFileSync(join(dir, "plugins"), plugins.join("\n"));
  const runs = 7;
  say();
  say(
    `== start-up of ${binary} with the shipped config/ (earlytalker's 1 s greeting delay set to 0), median of ${runs} (target < 150 ms):`,
  );
  for (const extra of [[], ...(hasWorkers ? [["--workers", "1"]] : [])]) {
    const listening: number[] = [];
    const greeting: number[] = [];
    for (let i = 0; i < runs; i++) {
      const port = await freePort();
      const t = await timeToGreeting([binary, "--config", dir, "-l", "127.0.0.1", "-p", String(port), ...extra], port, work);
      listening.push(t.listening);
      greeting.push(t.greeting);
    }
    const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
    const how = extra.length ? extra.join(" ") : hasWorkers ? `default workers (${cores})` : "as shipped";
    say(
      `${how.padEnd(24)} first connection accepted ${median(listening).toFixed(0)} ms (${range(listening)}), first 220 ${
        median(greeting).toFixed(0)
      } ms (${range(greeting)})`,
    );
  }
}

/**
 * Content scanning (issue 12): the benchmark set with spamassassin and virus/clamdscan against
 * private spamd and clamd (bench/scanners.ts starts them as the tests do). Our own CPU per
 * message only: the daemons' work is theirs.
 */
async function scannersGroup(): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, "bench", "scanners.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  stops.push(async () => {
    child.kill("SIGTERM");
    await exited;
  });
  const ready = await new Promise<string>((res, rej) => {
    child.stdout!.once("data", (d: Buffer) => res(d.toString().trim()));
    child.once("exit", () => rej(new Error("bench/scanners.ts could not start spamd and clamd")));
  });
  const [spamdPort, clamdSocket] = ready.split(" ");
  const config = benchConfig("scanners", [
    ...BENCH_SET,
    `spamassassin spamd_socket 127.0.0.1:${spamdPort}`,
    `virus/clamdscan clamd_socket ${clamdSocket}`,
    "queue/discard",
  ]);
  const p: Profile = {
    label: "20 sessions, 4 KB, new connection, scanned",
    sessions: 20,
    messages: n(300),
    size: 4096,
    rcpts: 1,
    keep: false,
  };
  say();
  say("== content scanning (issue 12): benchmark set + spamassassin + virus/clamdscan (private spamd and clamd); our CPU only");
  say(COLS);
  const ours = await withOurs(config, ["-c", "1000", "-m", "1000", ...workerArgs(1)], "scanners", (server) => measure(server, p), false);
  // spamd takes a tenth of a second a message: no time to warm the daemon up as the other groups do.
  row(p, ours, undefined, `  (smtp-sink scans nothing; a cold daemon: ${(ours.compiling ?? 0).toFixed(2)} ms of it is the JIT compiling)`);
  child.kill("SIGTERM");
  await exited;
}

/**
 * Shared state (issue 14): the benchmark set with greylisting (reject 0: the store work without
 * the deferral), karma and limit (generous limits: the counting without a refusal), on the
 * embedded SQLite store and on a private redis-server. Our own CPU only: Redis's is its own.
 */
async function storeGroup(): Promise<void> {
  const { startRedis } = await import("../tests/helpers/redis.ts");
  const redis = await startRedis();
  stops.push(() => redis.stop());
  const [, keep, bold] = mainProfiles();
  const limits = ["concurrency ip 1000", "connections ip 10000000/1m", "messages ip 10000000/1h", "recipients ip 100000000/1h"];
  const stateful = [
    "relay",
    "karma",
    "rhsbl",
    "dnsbl",
    "helo",
    "badmailfrom",
    "badrcptto",
    "loop",
    "limit",
    "greylisting reject 0",
    "rcpt_ok",
  ];
  const setups: Array<[string, string]> = [
    ["benchmark set alone", benchConfig("store-none", [...BENCH_SET, "queue/discard"])],
    [
      "+ greylisting karma limit, SQLite",
      benchConfig("store-sqlite", [...stateful, "queue/discard"], { limit: limits.join("\n"), db_dir: join(work, "db") }),
    ],
    [
      "+ greylisting karma limit, Redis",
      benchConfig("store-redis", [...stateful, "queue/discard"], { limit: limits.join("\n"), store: redis.url }),
    ],
  ];
  say();
  say("== shared state (issue 14): greylisting (reject 0), karma and limit on SQLite and on a private redis-server; our CPU only");
  say(
    `${"setup".padEnd(36)} ${"bold: msgs/s".padStart(13)} ${"ms/msg".padStart(7)}   ${"-d: msgs/s".padStart(11)} ${"ms/msg".padStart(7)}`,
  );
  const cpu = new Map<string, [number, number]>();
  for (const [label, config] of setups) {
    const [b, k] = await withOurs(config, ["-c", "1000", "-m", "1000", ...workerArgs(1)], `store-${label}`, async (server) => {
      return [await measure(server, bold!), await measure(server, keep!)] as const;
    });
    cpu.set(label, [b.cpu, k.cpu]);
    say(
      `${label.padEnd(36)} ${b.rate.toFixed(0).padStart(13)} ${b.cpu.toFixed(2).padStart(7)}   ${k.rate.toFixed(0).padStart(11)} ${
        k.cpu.toFixed(2).padStart(7)
      }`,
    );
  }
  const [none, sqlite, onRedis] = setups.map(([l]) => cpu.get(l)!);
  const d = (a: number, b: number): string => `${a - b >= 0 ? "+" : ""}${(a - b).toFixed(2)}`;
  say(
    `the three plugins on Redis cost ${d(onRedis![0], none![0])} ms/msg (bold), ${
      d(onRedis![1], none![1])
    } (-d) (target < 0.2); Redis vs SQLite ${d(onRedis![0], sqlite![0])} (bold), ${d(onRedis![1], sqlite![1])} (-d)`,
  );
}

/** The mail-authentication profile (issue 11): its own script, which prints its own table. */
async function authGroup(): Promise<void> {
  say();
  say("== mail authentication (issue 11): 4 KB DKIM-signed messages, 4 sessions on one connection each, DNS on loopback");
  const child = spawn(process.execPath, [join(ROOT, "bench", "mail_auth.ts")], { stdio: ["ignore", "pipe", "pipe"], env: process.env });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      say(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  if (code !== 0) say(`(mail-auth profile failed: ${err.trim().split("\n").slice(-3).join(" / ")})`);
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const version = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
  say(`make bench: ${version} (${binary}) vs Postfix smtp-sink, driven by smtp-source on loopback`);
  say(
    `machine: ${cores} cores (${cpus()[0]?.model.trim() ?? "?"}), load average ${loadAverage()}; BENCH_SCALE=${scale}; ${
      new Date().toISOString()
    }`,
  );
  say("columns: messages/s, ratio ours/smtp-sink, server CPU ms per message (utime+stime of its process tree), peak RSS");
  say(
    `warm-up: each qpsmtpd (and the floor) serves batches of ${WARM_UP.messages} messages before its group until its JIT compiler threads take under ${
      COMPILING * 100
    }% of its CPU (a running daemon's state; listed at the end), and every server a short run of each profile's shape before it`,
  );
  mkdirSync(join(work, "log"), { recursive: true });
  sink = await startSink(1024);
  stops.push(() => sink!.stop());
  await smtpSource(sink.port, WARM_UP);
  const t0 = performance.now();
  if (wanted("bench") || wanted("workers")) await benchGroups();
  if (wanted("chunking")) await chunkingGroup();
  if (wanted("sample")) await sampleGroup();
  if (wanted("maildir")) await maildirGroup();
  if (wanted("idle")) await idleGroup();
  if (wanted("startup")) await startupGroup();
  if (wanted("auth")) await authGroup();
  if (wanted("scanners")) await scannersGroup();
  if (wanted("store")) await storeGroup();
  say();
  say(
    `warm-up, messages (compiler threads' share of CPU in the last batch): ${
      warmUps.map((w) => `${w.name} ${w.messages} (${(w.compiling * 100).toFixed(1)}%)`).join(", ")
    }`,
  );
  say(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s; load average now ${loadAverage()}`);
}

try {
  await main();
  const results = process.env["BENCH_RESULTS"];
  if (results) writeResults(results);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}

/** Replaces the block between the markers in `path` with this run's output (the rest is notes). */
function writeResults(path: string): void {
  const begin = "<!-- bench:begin (written by make bench) -->";
  const end = "<!-- bench:end -->";
  const block = `${begin}\n\`\`\`\n${output.join("\n").trim()}\n\`\`\`\n${end}`;
  const old = existsSync(path) ? readFileSync(path, "utf8") : `# make bench: the last full run\n\n${begin}\n${end}\n`;
  const i = old.indexOf(begin), j = old.indexOf(end);
  writeFileSync(path, i >= 0 && j > i ? old.slice(0, i) + block + old.slice(j + end.length) : `${old.trimEnd()}\n\n${block}\n`);
  process.stdout.write(`wrote ${path}\n`);
}
