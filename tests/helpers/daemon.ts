/**
 * Private instances of real daemons for the tests (spamd, clamd, rspamd, milters): started from a
 * temp dir on a free loopback port or a socket there, waited for, stopped by pid. Also the three
 * broken peers every backend test needs: a port where nothing listens, a listener that hangs up at
 * once, and one that accepts and never answers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./daemons.ts";

export interface RunningDaemon {
  readonly name: string;
  readonly pid: number;
  /** What it wrote on stdout and stderr so far. */
  output(): string;
  /** Whether it is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (default the daemon's own, else 5 s); resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Every daemon still running: killed when the test process exits, whatever happened to afterAll. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** A temp directory every user may enter (daemons that drop to nobody read their config there). */
export function daemonDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `${prefix}-`));
  chmodSync(d, 0o777);
  return d;
}

export { freePort };

/** Whether something accepts connections at `where` now. */
export function answers(where: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((res) => {
    const c = "path" in where ? net.connect(where.path) : net.connect(where.port, "127.0.0.1");
    c.once("connect", () => (c.destroy(), res(true)));
    c.once("error", () => res(false));
  });
}

/**
 * Spawns `cmd` (no shell) and waits until every one of `ready` accepts connections, for at most
 * `ms`. Throws with the daemon's output when it exits or does not get ready in time.
 */
export async function startDaemon(
  name: string,
  cmd: string[],
  ready: Array<{ port: number } | { path: string }>,
  opts: { cwd?: string; ms?: number; env?: Record<string, string>; graceMs?: number } = {},
): Promise<RunningDaemon> {
  const child: ChildProcess = spawn(cmd[0]!, cmd.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let exited = false;
  running.add(child);
  const gone = new Promise<void>((r) =>
    child.once("exit", () => {
      exited = true;
      running.delete(child);
      r();
    })
  );
  child.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-100_000)));
  child.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-100_000)));
  const d: RunningDaemon = {
    name,
    pid: child.pid ?? -1,
    output: () => out,
    alive: () => !exited,
    async stop(graceMs = opts.graceMs ?? 5000) {
      if (exited) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await gone;
      clearTimeout(t);
    },
  };
  const until = Date.now() + (opts.ms ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${out}`);
    const up = await Promise.all(ready.map(answers));
    if (up.every(Boolean)) return d;
    if (Date.now() > until) {
      await d.stop(1000);
      throw new Error(`${name} was not ready within ${opts.ms ?? 60_000} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A loopback peer that misbehaves: `silent` accepts and never answers, `hangup` closes at once. */
export interface BrokenPeer {
  readonly port: number;
  /** Connections it accepted. */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function brokenPeer(kind: "silent" | "hangup"): Promise<BrokenPeer> {
  const held: net.Socket[] = [];
  let accepted = 0;
  const srv = net.createServer((c) => {
    accepted++;
    c.on("error", () => undefined);
    if (kind === "hangup") c.destroy();
    else held.push(c);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const c of held) c.destroy();
        srv.close(() => r());
      }),
  };
}

/** A loopback port where nothing listens (connections are refused). */
export const deadPort = freePort;
