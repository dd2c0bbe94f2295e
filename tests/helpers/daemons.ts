/**
 * Running real daemons from Debian as private test instances: a temp directory other users can
 * enter (the daemons drop to their own users), free loopback ports, waiting until a port or a
 * socket answers, and stopping by pid.
 */
import { type ChildProcess, spawn, type SpawnOptions } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const isRoot = process.getuid?.() === 0;

/** A new temp directory that daemons running as other users (dovecot, postfix, nobody) can enter. */
export function sharedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** A loopback port nothing listens on right now. */
/** Ports handed out in this process: the kernel may hand a closed one out again (1 pair in 5,000 here). */
const handedOut = new Set<number>();

/** A free loopback port, never one this process was given before (two daemons of a test on one port fail). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export type Target = { host: string; port: number } | { path: string };

/** Whether something accepts a connection at `target` now. */
export function accepts(target: Target): Promise<boolean> {
  return new Promise((resolve) => {
    const c = "path" in target ? net.connect(target.path) : net.connect(target.port, target.host);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** Polls until every target accepts connections; throws with `what` after `ms`, or once `alive()` says the daemon died. */
export async function waitForListeners(targets: Target[], what: string, alive: () => boolean = () => true, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (const t of targets) {
    while (!(await accepts(t))) {
      if (!alive()) throw new Error(`${what} exited`);
      if (Date.now() > until) throw new Error(`${what}: nothing listening at ${JSON.stringify(t)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A daemon in the foreground, its output kept for failure messages. */
export class Foreground {
  readonly child: ChildProcess;
  #output = "";
  readonly exited: Promise<number | null>;
  #running = true;

  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    const keep = (d: Buffer) => {
      this.#output = (this.#output + d.toString()).slice(-20_000);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code) => {
        this.#running = false;
        resolve(code);
      })
    );
  }

  get running(): boolean {
    return this.#running;
  }

  get output(): string {
    return this.#output;
  }

  /** SIGTERM by pid, SIGKILL if it has not gone after 5 s. */
  async stop(): Promise<void> {
    await stopPid(this.child.pid, this.exited);
  }
}

/** Stops process `pid`: SIGTERM, then SIGKILL after 5 s unless `exited` settled (or the pid is gone). */
export async function stopPid(pid: number | undefined, exited?: Promise<unknown>): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return; // already gone
  }
  const gone = exited ?? waitGone(pid);
  const timer = new Promise<"late">((r) => setTimeout(() => r("late"), 5000));
  if ((await Promise.race([gone, timer])) === "late") {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/** Waits until `pid` is gone; a zombie (not our child, so not ours to reap) counts as gone. */
async function waitGone(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"))) return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
