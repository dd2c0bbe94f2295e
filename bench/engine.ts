/**
 * The engine alone, without sockets: sessions of the bold profile's shape (EHLO, MAIL, RCPT x5,
 * DATA with 4 KB, QUIT, one session per message, `--sessions` at once) driven through `Session`
 * with an in-memory transport, the config and plugins loaded as the daemon loads them (the
 * benchmark set, logging/file at LOGINFO). Prints the process's CPU ms per message; with
 * `bun --cpu-prof bench/engine.ts` the profile has no idle time in it, unlike one of the daemon.
 *
 *   bun bench/engine.ts [--messages N] [--sessions N] [--rcpts N] [--size B] [--keep] [--empty] [--microtasks] [--config DIR]
 *
 * Each client line goes in on a later turn of the event loop (setImmediate), as from a socket;
 * `--microtasks` feeds it at once instead (the engine's work only, no event-loop turns). `--empty`
 * sessions send no message (greeting, EHLO, QUIT): the per-connection part.
 * @module
 */
import { mkdtempSync } from "node:fs";
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
  },
});

function benchConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), "qpengine-"));
  return writeBenchConfig(dir, [...BENCH_SET, "queue/discard"], join(dir, "qpsmtpd.log"));
}

installPluginModules({ qpsmtpd: api as unknown as Record<string, unknown> });
const host = createHost(configDirs(values.config ?? benchConfig()));
const registry: Registry = await loadPlugins(host);
connectLogging(registry);

const rcpts = Number(values.rcpts);
const body = message(Number(values.size)).replace(/\r\n/g, "\n").split("\n").map((l) => (l.startsWith(".") ? `.${l}` : l)).join("\r\n");
const dataText = `${body}.\r\n`;
const script = (keepFor: number): string[] => {
  const lines = ["EHLO bench.example.net\r\n"];
  for (let m = 0; m < keepFor; m++) {
    lines.push("MAIL FROM:<bench@example.net>\r\n");
    for (let r = 0; r < rcpts; r++) lines.push(`RCPT TO:<${r + 1}bench@example.com>\r\n`);
    lines.push("DATA\r\n", dataText);
  }
  lines.push("QUIT\r\n");
  return lines;
};

let sessionId = 0;
/** One client session: each line goes in after the server's reply to the previous one, as smtp-source does. */
function converse(lines: string[]): Promise<void> {
  return new Promise((done, fail) => {
    let next = 0;
    let pending = "";
    // Replies arrive as whole text; a final line is a code followed by a space.
    const transport: Transport = {
      write(data: string) {
        pending += data;
        if (!/(^|\n)\d{3} [^\n]*\r\n$/.test(pending)) return;
        const code = pending.slice(pending.lastIndexOf("\n", pending.length - 3) + 1).slice(0, 3);
        pending = "";
        if (code[0] !== "2" && code[0] !== "3") fail(new Error(`server said ${code} to ${JSON.stringify(lines[next - 1]?.slice(0, 40))}`));
        const line = lines[next++];
        if (line === undefined) return;
        // The next command comes in a later turn of the event loop, as from a socket.
        const feed = () => session.feed(Buffer.from(line, "latin1"));
        if (values.microtasks) queueMicrotask(feed);
        else setImmediate(feed);
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
