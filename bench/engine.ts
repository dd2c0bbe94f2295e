/**
 * The engine alone, without sockets: sessions of the bold profile's shape (EHLO, MAIL, RCPT x5,
 * DATA with 4 KB, QUIT, one session per message, `--sessions` at once) driven through `Session`
 * with an in-memory transport, the config and plugins loaded as the daemon loads them (the
 * benchmark set, logging/file at LOGINFO). Prints the process's CPU ms per message; with
 * `bun --cpu-prof bench/engine.ts` the profile has no idle time in it, unlike one of the daemon.
 *
 *   bun bench/engine.ts [--messages N] [--sessions N] [--rcpts N] [--size B] [--keep] [--empty] [--microtasks] [--config DIR] [--objects]
 *
 * Each client line goes in on a later turn of the event loop (setImmediate), as from a socket;
 * `--microtasks` feeds it at once instead (the engine's work only, no event-loop turns). `--empty`
 * sessions send no message (greeting, EHLO, QUIT): the per-connection part. `--objects` prints,
 * instead of the CPU, the heap objects made per message by type: a count that varies by a few
 * per cent at most between runs (the JIT's tiers decide whether some are made at all), for work
 * on allocation that CPU time (±10% between processes) cannot show.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as api from "../src/api/mod.ts";
import { configDirs, createHost, loadPlugins } from "../src/app.ts";
import { connectLogging } from "../src/core/logging.ts";
import type { Registry } from "../src/core/registry.ts";
import { Session, type Transport } from "../src/core/session.ts";
import { installPluginModules } from "../src/runtime/runtime.ts";
import { message } from "./clients.ts";
import { BENCH_SET, COMPILING, untilCompiled, writeBenchConfig } from "./procs.ts";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    sessions: { type: "string", default: "20" },
    rcpts: { type: "string", default: "5" },
    size: { type: "string", default: "4096" },
    keep: { type: "boolean" },
    microtasks: { type: "boolean" },
    empty: { type: "boolean" },
    config: { type: "string" },
    objects: { type: "boolean" },
  },
});

function benchConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), "qpengine-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return writeBenchConfig(dir, [...BENCH_SET, "queue/discard"], join(dir, "qpsmtpd.log"));
}

installPluginModules({ qpsmtpd: api as unknown as Record<string, unknown> });
const host = createHost(configDirs(values.config ?? benchConfig()));
const registry: Registry = await loadPlugins(host);
connectLogging(registry);

const rcpts = Number(values.rcpts);
const body = message(Number(values.size)).replace(/\r\n/g, "\n").split("\n").map((l) => (l.startsWith(".") ? `.${l}` : l)).join("\r\n");
const dataText = `${body}.\r\n`;
/** The client's lines for a session of `keepFor` messages, as bytes: made once, so the harness allocates little per line. */
const scripts = new Map<number, Buffer[]>();
const script = (keepFor: number): Buffer[] => {
  let made = scripts.get(keepFor);
  if (made) return made;
  const lines = ["EHLO bench.example.net\r\n"];
  for (let m = 0; m < keepFor; m++) {
    lines.push("MAIL FROM:<bench@example.net>\r\n");
    for (let r = 0; r < rcpts; r++) lines.push(`RCPT TO:<${r + 1}bench@example.com>\r\n`);
    lines.push("DATA\r\n", dataText);
  }
  lines.push("QUIT\r\n");
  scripts.set(keepFor, made = lines.map((l) => Buffer.from(l, "latin1")));
  return made;
};

const feedLine = (session: Session, line: Buffer): void => session.feed(line);

let sessionId = 0;
/** One client session: each line goes in after the server's reply to the previous one, as smtp-source does. */
function converse(lines: Buffer[]): Promise<void> {
  return new Promise((done, fail) => {
    let next = 0;
    let pending = "";
    // Replies arrive as whole text; a final line is a code followed by a space.
    const transport: Transport = {
      write(data: string) {
        pending = pending === "" ? data : pending + data;
        // A reply is complete at a final line: its code and then a space.
        const last = pending.lastIndexOf("\n", pending.length - 3) + 1;
        if (!pending.endsWith("\r\n") || pending.charCodeAt(last + 3) !== 32) return;
        const code = pending.charCodeAt(last);
        if (code !== 50 && code !== 51) {
          fail(new Error(`server said ${pending.slice(last, last + 3)} to ${JSON.stringify(lines[next - 1]?.toString("latin1", 0, 40))}`));
        }
        pending = "";
        const line = lines[next++];
        if (line === undefined) return;
        // The next command comes in a later turn of the event loop, as from a socket.
        if (values.microtasks) queueMicrotask(() => session.feed(line));
        else setImmediate(feedLine, session, line);
      },
      backlog: () => 0,
      drained: () => Promise.resolve(),
      abort() {},
      startTls: () => Promise.reject(new Error("no TLS")),
      close() {},
      pause() {},
      resume() {},
    };
    const session: Session = new Session({
      registry,
      transport,
      endpoints: { remote_ip: "127.0.0.1", remote_port: 40000 + (sessionId % 20000), local_ip: "127.0.0.1", local_port: 25 },
      id: (sessionId++).toString(16).padStart(8, "0"),
    });
    session.run().then(() => session.end()).then(done, fail);
  });
}

const total = Number(values.messages);
const parallel = Number(values.sessions);
const perSession = values.keep ? Math.max(1, Math.floor(total / parallel)) : 1;
// --empty: sessions without a message (greeting, EHLO, QUIT): what a connection costs by itself.
const perScript = values.empty ? 0 : perSession;
async function runAll(n: number): Promise<void> {
  let left = n;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (left > 0) {
      const k = Math.min(perSession, left);
      left -= k;
      await converse(script(Math.min(k, perScript)));
    }
  }));
}

// Warm-up until the JIT's compiler threads go quiet (they run for many thousands of messages; see warmUpRun in procs.ts).
await untilCompiled(process.pid, () => runAll(Math.max(200, total / 10)), COMPILING, 15);
if (values.objects) await countObjects();
const c0 = process.cpuUsage();
const t0 = performance.now();
await runAll(total);
const secs = (performance.now() - t0) / 1000;
const c = process.cpuUsage(c0);
console.log(
  `${total} messages, ${parallel} at once, ${rcpts} rcpts, ${values.keep ? "kept" : "new"} sessions: ${(total / secs).toFixed(0)}/s, CPU ${
    ((c.user + c.system) / 1000 / total).toFixed(3)
  } ms/msg (user ${(c.user / 1000 / total).toFixed(3)}, sys ${(c.system / 1000 / total).toFixed(3)})`,
);
process.exit(0);

/**
 * Heap objects made per message, by type. After a full collection, a batch small enough that
 * no collection runs during it (a weak reference to a fresh object says whether one did): every
 * object made in the batch is still counted after it.
 */
async function countObjects(): Promise<never> {
  const { heapStats } = await import("bun:jsc");
  for (let batch = 50; batch >= 5; batch = Math.floor(batch / 2)) {
    Bun.gc(true);
    const before = heapStats().objectTypeCounts;
    const canary = new WeakRef({});
    await runAll(batch);
    const after = heapStats().objectTypeCounts;
    if (canary.deref() === undefined) continue; // collected during the batch: a smaller one
    const rows = Object.entries(after).map(([type, n]): [string, number] => [type, (n - (before[type] ?? 0)) / batch])
      .filter(([, n]) => n >= 0.05).sort((a, b) => b[1] - a[1]);
    console.log(
      `heap objects made per ${values.empty ? "session" : "message"}: ${
        rows.reduce((t, [, n]) => t + n, 0).toFixed(0)
      } (${batch} in a batch)`,
    );
    for (const [type, n] of rows) console.log(`${n.toFixed(1).padStart(8)}  ${type}`);
    console.log("(the harness's own: an Immediate per client line, or a closure with --microtasks)");
    process.exit(0);
  }
  throw new Error("a collection ran during every batch");
}
