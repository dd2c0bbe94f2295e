/**
 * A CPU profile of the daemon under one `make bench` profile: runs `bun --cpu-prof src/main.ts`
 * (the compiled binary runs the same code) with the benchmark plugin set, drives it with
 * smtp-source, stops it with SIGTERM, and prints the functions with the most self time.
 *
 *   bun bench/profile.ts [--keep] [--sessions N] [--messages N] [--size B] [--rcpts N] [--top N] [--out DIR]
 *
 * Defaults: the bold profile (20 sessions, 4 KB, 5 recipients, a new connection per message).
 * The .cpuprofile stays in --out (a temp dir) for Chrome DevTools or speedscope. Mind that Bun's
 * sampler counts the time a thread waits against the last function it ran (see cpuprofile.ts):
 * for CPU alone, profile bench/engine.ts.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { printTop } from "./cpuprofile.ts";
import { BENCH_SET, freePort, smtpSource, waitForPort, writeBenchConfig } from "./procs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    keep: { type: "boolean" },
    sessions: { type: "string", default: "20" },
    messages: { type: "string", default: "10000" },
    size: { type: "string", default: "4096" },
    rcpts: { type: "string", default: "5" },
    top: { type: "string", default: "25" },
    out: { type: "string" },
  },
});

const out = values.out ?? mkdtempSync(join(tmpdir(), "qpprof-"));
const cfg = join(out, "config");
writeBenchConfig(cfg, [...BENCH_SET, "queue/discard"], join(out, "qpsmtpd.log"));

const port = await freePort();
// One process: the profile is of the code that serves, not of a cluster's primary.
const help = spawnSync(process.execPath, [join(ROOT, "src/main.ts"), "--help"], { encoding: "utf8" }).stdout;
const workers = help.includes("--workers") ? ["--workers", "1"] : [];
const child = spawn(
  process.execPath,
  [
    "--cpu-prof",
    "--cpu-prof-dir",
    out,
    join(ROOT, "src/main.ts"),
    "--config",
    cfg,
    "-l",
    "127.0.0.1",
    "-p",
    String(port),
    "-c",
    "1000",
    "-m",
    "1000",
    ...workers,
  ],
  { stdio: ["ignore", "inherit", "inherit"], cwd: out },
);
const exited = new Promise((r) => child.once("exit", r));
await waitForPort(port);
const run = {
  sessions: Number(values.sessions),
  messages: Number(values.messages),
  size: Number(values.size),
  rcpts: Number(values.rcpts),
  keep: values.keep ?? false,
};
const secs = await smtpSource(port, run);
child.kill("SIGTERM");
await exited;
console.log(`${run.messages} messages in ${secs.toFixed(1)} s (${(run.messages / secs).toFixed(0)}/s, profiler on)`);

const file = readdirSync(out).filter((f) => f.endsWith(".cpuprofile")).sort().pop();
if (!file) throw new Error(`no .cpuprofile in ${out}`);
printTop(join(out, file), Number(values.top));
