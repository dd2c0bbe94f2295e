/**
 * Private redis-server instances (Debian's) for the store tests: one server, or a three-master
 * cluster. Each runs from a temp dir on free loopback ports with no persistence
 * (`--save "" --appendonly no`), is stopped by pid, and can be killed and started again on the
 * same port, or paused (SIGSTOP: it accepts and never answers) and resumed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type RunningDaemon, startDaemon } from "./daemon.ts";

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The running process (changes on restart). */
  readonly pid: number;
  /** SIGKILL: gone at once, as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was saved). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: connections are accepted but nothing answers. */
  pause(): void;
  resume(): void;
  /** redis-cli against it. */
  cli(...args: string[]): string;
  stop(): Promise<void>;
}

const REDIS_ARGS = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"];

/** `extra`: more redis-server arguments; `tls`: serve TLS only, with this certificate and key. */
export async function startRedis(extra: string[] = [], opts: { tls?: { cert: string; key: string } } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "qpredis-"));
  const port = await freePort();
  const listen = opts.tls
    ? [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--tls-cert-file",
      opts.tls.cert,
      "--tls-key-file",
      opts.tls.key,
      "--tls-auth-clients",
      "no",
    ]
    : ["--port", String(port)];
  const launch = () =>
    startDaemon("redis-server", ["redis-server", ...listen, "--dir", dir, ...REDIS_ARGS, ...extra], [{ port }], { ms: 15_000 });
  let d: RunningDaemon = await launch();
  return {
    port,
    url: `${opts.tls ? "rediss" : "redis"}://127.0.0.1:${port}/0`,
    get pid() {
      return d.pid;
    },
    async kill() {
      process.kill(d.pid, "SIGKILL");
      await d.stop(100);
    },
    async restart() {
      d = await launch();
    },
    pause: () => process.kill(d.pid, "SIGSTOP"),
    resume: () => process.kill(d.pid, "SIGCONT"),
    cli: (...args) => redisCli(port, ...args),
    async stop() {
      if (d.alive()) process.kill(d.pid, "SIGCONT");
      await d.stop(2000);
    },
  };
}

export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

export interface RedisCluster {
  readonly ports: readonly number[];
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  readonly url: string;
  stop(): Promise<void>;
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p > 55000 || taken.has(p)) continue;
    const busFree = await new Promise<boolean>((res) => {
      const s = net.createServer();
      s.once("error", () => res(false));
      s.listen(p + 10000, "127.0.0.1", () => s.close(() => res(true)));
    });
    if (busFree) return p;
  }
}

/** Three masters, all 16384 slots assigned, no replicas; resolves once the cluster is ok. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await clusterPort(taken);
    taken.add(p);
    ports.push(p);
  }
  const daemons: RunningDaemon[] = [];
  try {
    for (const port of ports) {
      const dir = mkdtempSync(join(tmpdir(), "qpredisc-"));
      daemons.push(
        await startDaemon(
          "redis-server",
          [
            "redis-server",
            "--port",
            String(port),
            "--dir",
            dir,
            ...REDIS_ARGS,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
          ],
          [{ port }],
          { ms: 15_000 },
        ),
      );
    }
    redisCli(ports[0]!, "--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes");
    const until = Date.now() + 20_000;
    while (!ports.every((p) => redisCli(p, "cluster", "info").includes("cluster_state:ok"))) {
      if (Date.now() > until) throw new Error("the cluster did not become ok");
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await Promise.all(daemons.map((d) => d.stop(1000)));
    throw e;
  }
  return {
    ports,
    url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
    stop: async () => void (await Promise.all(daemons.map((d) => d.stop(2000)))),
  };
}
