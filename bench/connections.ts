/**
 * What a connection costs by itself, in the server's CPU: connections that say EHLO and QUIT and
 * send no message, 20 at a time, from a client in this process. Beside dist/qpsmtpd with the
 * benchmark set it runs the same daemon with `rcpt_ok queue/discard` only (the core), the floor
 * on the daemon's socket layer, and the floor (bench/floor.ts), so the per-connection overhead
 * `make bench` prints (a new connection per message minus a kept one, which also moves the
 * message's own work) splits into the runtime and kernel (the floor), the socket layer, the core
 * and the plugins. Each is warmed up first; the rounds go round the servers, and each figure is
 * the median of the rounds. Steadier than the message profiles: a few per cent between runs.
 *
 *   bun bench/connections.ts [--connections N] [--rounds N] [--at-once N]
 *
 * `--at-once 1` is the shape of the one-session profiles, where every command wakes the server
 * from its sleep.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_SET, cpuMs, median, type Server, startFloor, startOurs, writeBenchConfig } from "./procs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
    "at-once": { type: "string", default: "20" },
  },
});
const N = Number(values.connections);
const AT_ONCE = Number(values["at-once"]);
const work = mkdtempSync(join(tmpdir(), "qpconn-"));

/** One connection: the greeting, EHLO, QUIT, then it closes; each line sent after the reply before it. */
function converse(port: number): Promise<void> {
  return new Promise((done, fail) => {
    const s = net.connect(port, "127.0.0.1");
    const lines = ["EHLO bench.example.net\r\n", "QUIT\r\n"];
    let pending = "";
    s.on("data", (d: Buffer) => {
      pending += d.toString("latin1");
      // A reply is complete at its final line: the code and a space.
      if (!/(?:^|\n)\d{3} [^\n]*\r\n$/.test(pending)) return;
      if (!/^[23]/.test(pending)) fail(new Error(`${port} said: ${pending.trim()}`));
      pending = "";
      const next = lines.shift();
      if (next) s.write(next);
      else s.end();
    });
    s.on("close", () => done());
    s.on("error", fail);
  });
}

async function connections(port: number, n: number): Promise<void> {
  let left = n;
  await Promise.all(Array.from({ length: AT_ONCE }, async () => {
    while (left-- > 0) await converse(port);
  }));
}

const config = (name: string, plugins: string[]): string => writeBenchConfig(join(work, name), plugins, join(work, `${name}.log`));
const daemon = (name: string, plugins: string[]): Promise<Server> =>
  startOurs(
    join(ROOT, "dist/qpsmtpd"),
    config(name, plugins),
    ["-c", "1000", "-m", "1000", "--workers", "1"],
    join(work, `${name}.err`),
    work,
  );

const servers: Array<[string, Server]> = [
  ["qpsmtpd, the benchmark set", await daemon("bench", [...BENCH_SET, "queue/discard"])],
  ["qpsmtpd, rcpt_ok queue/discard", await daemon("core", ["rcpt_ok", "queue/discard"])],
  ["the floor on our socket layer", await startFloor(process.execPath, true)],
  ["the floor (Bun's sockets)", await startFloor(process.execPath)],
];
const costs = new Map<string, number[]>(servers.map(([label]) => [label, []]));
try {
  for (const [, s] of servers) await connections(s.port, 2 * N); // warm-up
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [label, s] of servers) {
      const before = cpuMs(s.pid);
      await connections(s.port, N);
      costs.get(label)!.push((cpuMs(s.pid) - before) / N);
    }
  }
} finally {
  for (const [, s] of servers) await s.stop();
  rmSync(work, { recursive: true, force: true });
}

console.log(
  `server CPU ms per connection (greeting, EHLO, QUIT, close; ${N} a round, ${AT_ONCE} at once), median of ${values.rounds} rounds`,
);
let below: number | undefined;
for (const [label] of [...servers].reverse()) {
  const m = median(costs.get(label)!);
  const all = costs.get(label)!.map((x) => x.toFixed(3)).join(" ");
  console.log(`${label.padEnd(32)} ${m.toFixed(3)}${below === undefined ? "       " : ` (+${(m - below).toFixed(3)})`}   rounds: ${all}`);
  below = m;
}
process.exit(0);
