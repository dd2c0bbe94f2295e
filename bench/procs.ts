/**
 * The servers `make bench` measures and what it reads about them: dist/qpsmtpd and Postfix's
 * smtp-sink started on free loopback ports, smtp-source runs, and CPU time and memory of a
 * server's whole process tree from /proc (workers are children of the primary).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join, resolve } from "node:path";
import { freePort } from "../tests/helpers/daemon.ts";

const TICKS = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;
export const SOURCE = existsSync("/usr/sbin/smtp-source") ? "/usr/sbin/smtp-source" : "smtp-source";
export const SINK = existsSync("/usr/sbin/smtp-sink") ? "/usr/sbin/smtp-sink" : "smtp-sink";

export { freePort };

/** Resolves once something accepts on `port`, or rejects after `ms`. */
export async function waitForPort(port: number, ms = 20000, alive: () => boolean = () => true): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && alive()) {
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), res(true)));
      c.once("error", () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port}`);
}

/** The pid and its descendants (a primary and its workers), from /proc/PID/task/TID/children. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids = "";
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, "utf8");
      } catch { /* the thread ended */ }
      for (const k of kids.split(" ")) if (k.trim()) walk(Number(k));
    }
  };
  walk(pid);
  return out;
}

/** Fields of /proc/PID/stat after the command name (field 3 is index 0). */
function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * CPU milliseconds of a server: utime+stime of each process in its tree, plus the cutime+cstime
 * of children it has reaped (a worker that exited still counts).
 */
export function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1000) / TICKS;
}

/**
 * CPU milliseconds of this process's children that have ended and been waited for (cutime +
 * cstime of /proc/self/stat): around one smtp-source run, that client's own CPU.
 */
export function endedChildrenCpuMs(): number {
  const f = statFields(process.pid);
  return f ? ((Number(f[13]) + Number(f[14])) * 1000) / TICKS : 0;
}

/**
 * A stopwatch on the JIT's compiler threads (JavaScriptCore names them JITWorker) of a server's
 * process tree: call the result for their CPU milliseconds since, i.e. how much of the server's
 * CPU went on compiling rather than serving. A thread that ends in between is not counted.
 */
export function compilerCpu(pid: number): () => number {
  const before = compilerTicks(pid);
  return () => {
    let ticks = 0;
    for (const [tid, n] of compilerTicks(pid)) ticks += n - (before.get(tid) ?? 0);
    return (ticks * 1000) / TICKS;
  };
}

/**
 * Runs `batch` until the server's compiler threads take under `share` of its CPU in one (at most
 * `max` times): a daemon that has served for a while has its code compiled. Says how many batches
 * it took and the compiler threads' share in the last.
 */
export async function untilCompiled(
  pid: number,
  batch: () => Promise<unknown>,
  share: number,
  max: number,
): Promise<{ batches: number; compiling: number }> {
  let batches = 0;
  let compiling = 1;
  while (batches < max && compiling >= share) {
    const compiled = compilerCpu(pid);
    const c0 = cpuMs(pid);
    await batch();
    batches++;
    compiling = compiled() / Math.max(1, cpuMs(pid) - c0);
  }
  return { batches, compiling };
}

function compilerTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of processTree(pid)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch { /* gone */ }
    for (const t of tasks) {
      try {
        if (!readFileSync(`/proc/${p}/task/${t}/comm`, "utf8").startsWith("JITWorker")) continue;
        const s = readFileSync(`/proc/${p}/task/${t}/stat`, "utf8");
        const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
        out.set(`${p}/${t}`, Number(f[11]) + Number(f[12]));
      } catch { /* the thread ended */ }
    }
  }
  return out;
}

/**
 * A /proc/PID/status field in KiB, summed over the tree: VmRSS, VmHWM (its peak), or the resident
 * set's parts: RssAnon and RssShmem (the process's own memory), RssFile (pages of mapped files,
 * the executable's code among them, shared with every process that maps them).
 */
export function memKiB(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssShmem" | "RssFile"): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch { /* gone */ }
  }
  return kib;
}

export interface Server {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

function started(name: string, child: ReturnType<typeof spawn>, port: number): Server {
  let exited = false;
  const gone = new Promise<void>((r) => child.once("exit", () => ((exited = true), r())));
  return {
    name,
    pid: child.pid!,
    port,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10000);
      await gone;
      clearTimeout(t);
    },
    // Internal: lets start() give up on a child that died.
    ...{ alive: () => !exited },
  } as Server & { alive(): boolean };
}

/** dist/qpsmtpd (or `binary`) on a free port with `config`; stderr goes to `log`. */
export async function startOurs(binary: string, config: string, args: string[], log: string, cwd: string): Promise<Server> {
  const port = await freePort();
  const fd = openSync(log, "a");
  const child = spawn(binary, ["--config", config, "-l", "127.0.0.1", "-p", String(port), ...args], {
    stdio: ["ignore", fd, fd],
    cwd,
  });
  closeSync(fd);
  const s = started("qpsmtpd", child, port) as Server & { alive(): boolean };
  try {
    await waitForPort(port, 30000, s.alive);
  } catch (e) {
    await s.stop();
    throw new Error(`${(e as Error).message}: qpsmtpd did not start; see ${log}:\n${tail(log)}`);
  }
  return s;
}

/**
 * bench/floor.ts (an SMTP responder that checks and keeps nothing) on a free port, run by `bun`;
 * `ourSockets`: the same on the daemon's socket layer, in `workers` node:cluster workers if more than one.
 */
export async function startFloor(bun: string, ourSockets = false, workers = 1): Promise<Server> {
  const port = await freePort();
  const args = [join(import.meta.dirname, "floor.ts"), String(port), ...(ourSockets ? ["--our-sockets"] : [])];
  if (workers > 1) args.push("--workers", String(workers));
  const child = spawn(bun, args, { stdio: "ignore" });
  const name = ourSockets ? `floor, our sockets${workers > 1 ? `, ${workers} workers` : ""}` : "floor";
  const s = started(name, child, port) as Server & { alive(): boolean };
  await waitForPort(port, 10000, s.alive);
  return s;
}

/** Postfix's smtp-sink on a free port, taking at most `maxConnections` at once. */
export async function startSink(maxConnections: number): Promise<Server> {
  const port = await freePort();
  // smtp-sink refuses to run as root without a user to become.
  const user = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  const child = spawn(SINK, [...user, "-m", String(maxConnections), `127.0.0.1:${port}`, "4096"], { stdio: "ignore" });
  const s = started("smtp-sink", child, port) as Server & { alive(): boolean };
  await waitForPort(port, 10000, s.alive);
  return s;
}

export interface SourceRun {
  sessions: number;
  messages: number;
  size: number;
  rcpts: number;
  /** One connection per session for all its messages (`-d`), else a new one per message. */
  keep: boolean;
}

/** Runs smtp-source to completion against `port`; resolves with the wall-clock seconds. */
export function smtpSource(port: number, r: SourceRun): Promise<number> {
  const args = ["-s", String(r.sessions), "-m", String(r.messages), "-l", String(r.size), "-r", String(r.rcpts)];
  if (r.keep) args.unshift("-d");
  args.push("-M", "bench.example.net", "-f", "bench@example.net", "-t", "bench@example.com", `127.0.0.1:${port}`);
  const t0 = performance.now();
  const child = spawn(SOURCE, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((res, rej) => {
    child.once("exit", (code) => {
      if (code === 0) res((performance.now() - t0) / 1000);
      else rej(new Error(`smtp-source ${args.join(" ")} exited ${code}: ${err.trim().split("\n").slice(-3).join(" / ")}`));
    });
  });
}

/**
 * A daemon serves for days: what a message costs it then is what the bench measures. The JIT
 * goes on compiling for thousands of messages (measured, bold profile: its compiler threads took
 * 0.42 ms per message over the first 1,500, 0.1-0.2 ms up to about 10,000, then nothing; two
 * workers take twice the messages), so each qpsmtpd started for measuring, and the floor, first
 * serve batches of the bold profile's shape (`warmUpRun`) until the compiler threads take under
 * COMPILING of their CPU (at most WARM_BATCHES batches).
 */
export function warmUpRun(scale = 1): SourceRun {
  return { sessions: 20, messages: Math.max(200, Math.round(1500 * Math.min(1, scale))), size: 4096, rcpts: 5, keep: false };
}
const WARM_BATCHES = 24;
export const COMPILING = 0.03;

/** Serves `run` batches to `server` until its JIT is done compiling (see warmUpRun). */
export function warmUp(server: Server, run: SourceRun): Promise<{ batches: number; compiling: number }> {
  return untilCompiled(server.pid, () => smtpSource(server.port, run), COMPILING, WARM_BATCHES);
}

export function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** Every file under `dir`, recursively (counts delivered Maildir files). */
export function countFiles(dir: string): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  return n;
}

/** qpsmtpd's benchmark plugin set, before the queue plugin. */
export const BENCH_SET = ["relay", "rhsbl", "dnsbl", "helo", "badmailfrom", "badrcptto", "loop", "rcpt_ok"];

/**
 * Writes a config directory at `dir`: the shipped basics, `plugins`, empty zone lists and
 * logging/file at LOGINFO into `logFile`, then `extra` files.
 */
export function writeBenchConfig(dir: string, plugins: string[], logFile: string, extra: Record<string, string> = {}): string {
  const shipped = resolve(import.meta.dirname, "..", "config");
  mkdirSync(dir, { recursive: true });
  for (const f of ["me", "rcpthosts", "databytes", "size_threshold", "badhelo", "badmailfrom", "badrcptto"]) {
    if (existsSync(join(shipped, f))) copyFileSync(join(shipped, f), join(dir, f));
  }
  const files: Record<string, string> = {
    plugins: plugins.join("\n"),
    dnsbl_zones: "",
    rhsbl_zones: "",
    logging: `logging/file loglevel LOGINFO ${logFile}`,
    ...extra,
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text === "" ? "" : `${text}\n`);
  return dir;
}
