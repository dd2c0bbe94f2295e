/**
 * A private HAProxy (Debian's haproxy) in TCP mode for the PROXY protocol tests: its config in a
 * temp dir, one loopback frontend per backend, each backend one server line (`send-proxy`,
 * `send-proxy-v2`, or nothing), run in the foreground (`-db`, so the pid is ours) and stopped by
 * pid. No health checks: HAProxy connects to the backend only for a client.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Foreground, freePort, sharedTempDir, waitForListeners } from "./daemons.ts";

export interface HaproxyRoute {
  /** The backend HAProxy forwards to. */
  readonly target: { host: string; port: number };
  /** What HAProxy says first: a v1 or a v2 header, or none. */
  readonly send: "send-proxy" | "send-proxy-v2" | "none";
}

export interface Haproxy {
  /** The frontend port of each route, in order (on 127.0.0.1). */
  readonly ports: number[];
  readonly pid: number;
  readonly config: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startHaproxy(routes: HaproxyRoute[]): Promise<Haproxy> {
  const dir = sharedTempDir("haproxy-");
  const ports: number[] = [];
  for (const _ of routes) ports.push(await freePort());
  const sections = routes.map((r, i) =>
    [
      `frontend f${i}`,
      `  bind 127.0.0.1:${ports[i]}`,
      `  default_backend b${i}`,
      `backend b${i}`,
      `  server s${i} ${r.target.host}:${r.target.port}${r.send === "none" ? "" : ` ${r.send}`}`,
    ].join("\n")
  );
  const config = join(dir, "haproxy.cfg");
  writeFileSync(
    config,
    [
      "global",
      "  maxconn 200",
      // Nothing logged to syslog; no stats socket, no chroot, no user switch: a test instance.
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      "  timeout client 60s",
      "  timeout server 60s",
      ...sections,
      "",
    ].join("\n"),
  );
  // -db: stay in the foreground, so the pid is the proxy's; -f: only our config.
  const proc = new Foreground("haproxy", ["-db", "-f", config], { cwd: dir });
  try {
    await waitForListeners(ports.map((port) => ({ host: "127.0.0.1", port })), "haproxy", () => proc.running);
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}\n${proc.output}`);
  }
  return {
    ports,
    pid: proc.child.pid ?? -1,
    config,
    output: () => proc.output,
    stop: () => proc.stop(),
  };
}
