/**
 * What an operator sees of a running daemon: the Prometheus metrics on `metrics_listen`, and
 * `qpsmtpd status` through the control socket. One process answers for all: the only process,
 * or the cluster's primary, which asks every worker for its part (`gather`) and adds them up.
 * @module
 */
import type * as http from "node:http";
import { LOGERROR, LOGNOTICE } from "../api/codes.ts";
import { VERSION } from "../api/version.ts";
import type { ListenSpec } from "../config/settings.ts";
import { type ControlServer, serveControl } from "../control/control.ts";
import type { ServerHost } from "../core/server_host.ts";
import { exposition, mergeSnapshots, type Snapshot } from "../metrics/metrics.ts";
import type { SmtpServer } from "./server.ts";

/** One serving process's part. */
export interface ProcessView {
  readonly pid: number;
  readonly startedAt: number;
  /** When its plugins were last loaded. */
  readonly loadedAt: number;
  readonly sessions: ReadonlyArray<{ readonly ip: string; readonly state: string }>;
  readonly acceptedLastMinute: number;
  readonly acceptedLastHour: number;
  readonly plugins: ReadonlyArray<{ readonly name: string; readonly errors: number }>;
  readonly metrics: Snapshot;
}

/** The answer to `status`. */
export interface StatusReport {
  readonly version: string;
  readonly pid: number;
  readonly listeners: ReadonlyArray<{ readonly address: string; readonly port: number; readonly tls: boolean; readonly proxy: boolean }>;
  readonly workers: ReadonlyArray<ProcessView>;
}

const startedAt = Date.now();

/** This process's view. */
export function viewOf(host: ServerHost, server: SmtpServer): ProcessView {
  const now = host.clock.now();
  const m = host.metrics;
  return {
    pid: process.pid,
    startedAt,
    loadedAt: host.loadedAt,
    sessions: server.observe(),
    acceptedLastMinute: m.accepted.lastMinute(now),
    acceptedLastHour: m.accepted.lastHour(now),
    plugins: server.registry.plugins.map((p) => ({ name: p.name, errors: m.errorsByPlugin.get(p.escapedName) ?? 0 })),
    metrics: m.registry.snapshot(),
  };
}

export interface ObserverOptions {
  readonly host: ServerHost;
  readonly listen: readonly ListenSpec[];
  /** `metrics_listen`: `ADDR:PORT` of the metrics listener; none when undefined. */
  readonly metricsListen?: string;
  /** The control socket's path. */
  readonly controlSocket: string;
  /** Every serving process's view (this one's, or the workers'). */
  readonly gather: () => Promise<ProcessView[]>;
}

export interface Observers {
  /** Where the metrics listener is (its port, when `metrics_listen` asked for port 0). */
  readonly metrics?: { readonly address: string; readonly port: number };
  close(): void;
}

/** Starts the metrics listener and the control socket; a failure is logged, never fatal to mail. */
export async function startObservers(o: ObserverOptions): Promise<Observers> {
  let control: ControlServer | undefined;
  let httpServer: http.Server | undefined;
  let bound: { address: string; port: number } | undefined;
  const report = async (): Promise<StatusReport> => ({
    version: VERSION,
    pid: process.pid,
    listeners: o.listen.map((l) => ({ address: l.host, port: l.port, tls: l.tls, proxy: l.proxy !== undefined })),
    workers: await o.gather(),
  });
  try {
    control = await serveControl(o.controlSocket, async (req) => {
      if (req.cmd === "status") return report();
      throw new Error(`unknown command "${req.cmd}" (known: status)`);
    });
  } catch (e) {
    o.host.log(LOGERROR, `control socket ${o.controlSocket}: ${(e as Error).message}; qpsmtpd status will not answer`, "server");
  }
  if (o.metricsListen) {
    const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(o.metricsListen);
    if (!m) {
      o.host.log(LOGERROR, `metrics_listen "${o.metricsListen}" is not ADDR:PORT; no metrics`, "server");
    } else {
      // Imported here: node:http takes 4-5 ms to load, which a daemon without metrics need not pay at start.
      const { createServer } = await import("node:http");
      httpServer = createServer((req, res) => {
        if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
          return;
        }
        o.gather().then(
          (views) => {
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
            res.end(exposition(mergeSnapshots(views.map((v) => v.metrics))));
          },
          (e: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${e.message}\n`),
        );
      });
      try {
        await new Promise<void>((resolve, reject) => {
          httpServer!.once("error", reject);
          httpServer!.listen(Number(m[2]), m[1], () => resolve());
        });
        const a = httpServer.address() as { address: string; port: number };
        bound = { address: a.address, port: a.port };
        o.host.log(LOGNOTICE, `metrics on http://${o.metricsListen.replace(/:\d+$/, "")}:${a.port}/metrics`, "server");
      } catch (e) {
        o.host.log(LOGERROR, `metrics_listen ${o.metricsListen}: ${(e as Error).message}; no metrics`, "server");
        httpServer = undefined;
      }
    }
  }
  return {
    ...(bound ? { metrics: bound } : {}),
    close() {
      control?.close();
      httpServer?.close();
    },
  };
}

/** `qpsmtpd status` as text. */
export function formatStatus(r: StatusReport, now = Date.now()): string {
  const ago = (t: number): string => {
    const s = Math.max(0, Math.round((now - t) / 1000));
    return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  };
  const lines: string[] = [];
  const sessions = r.workers.flatMap((w) => w.sessions);
  lines.push(`qpsmtpd ${r.version}, pid ${r.pid}, ${r.workers.length} serving process(es)`);
  lines.push(
    `listening on ${r.listeners.map((l) => `${l.address}:${l.port}${l.tls ? " (TLS)" : ""}${l.proxy ? " (PROXY)" : ""}`).join(", ")}`,
  );
  const byState = new Map<string, number>();
  const byClient = new Map<string, number>();
  for (const s of sessions) {
    byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
    byClient.set(s.ip, (byClient.get(s.ip) ?? 0) + 1);
  }
  lines.push(`connections: ${sessions.length}${sessions.length ? ` (${[...byState].map(([k, v]) => `${v} ${k}`).join(", ")})` : ""}`);
  const top = [...byClient].sort((a, b) => b[1] - a[1]).slice(0, 10);
  for (const [ip, n] of top) lines.push(`  ${ip}: ${n}`);
  const sum = (f: (w: ProcessView) => number): number => r.workers.reduce((a, w) => a + f(w), 0);
  lines.push(
    `messages accepted: ${sum((w) => w.acceptedLastMinute)} in the last minute, ${sum((w) => w.acceptedLastHour)} in the last hour`,
  );
  const errors = new Map<string, number>();
  const names: string[] = [];
  for (const w of r.workers) {
    for (const p of w.plugins) {
      if (!errors.has(p.name)) names.push(p.name);
      errors.set(p.name, (errors.get(p.name) ?? 0) + p.errors);
    }
  }
  lines.push(`plugins (${names.length}): ${names.map((n) => (errors.get(n) ? `${n} (${errors.get(n)} errors)` : n)).join(", ")}`);
  const loaded = Math.max(...r.workers.map((w) => w.loadedAt), 0);
  const started = Math.min(...r.workers.map((w) => w.startedAt));
  lines.push(`started ${ago(started)}; config and plugins loaded ${loaded ? ago(loaded) : "at start"}`);
  return `${lines.join("\n")}\n`;
}
