/**
 * A worker of the cluster: drops privileges, loads the plugins itself (its logging plugins hear
 * its lines), listens (node:cluster hands it the primary's sockets), and serves once the primary
 * says hello. Limits go through the primary's ledger (WorkerGate), sessions are reported to it
 * (stress, `child_addrs`); SIGHUP and SIGTERM come from the primary as messages, or directly.
 * @module
 */
import { LOGINFO } from "../api/codes.ts";
import type { Registry } from "../core/registry.ts";
import type { ServerHost } from "../core/server_host.ts";
import { WorkerGate } from "./admission.ts";
import { catchStrayErrors, firstGeneration, type LoadPlugins, Reloader } from "./daemon.ts";
import { PeerAddrs } from "./load.ts";
import type { Down, Up, WorkerConfig } from "./messages.ts";
import { viewOf } from "./observe.ts";
import { Outbox } from "./outbox.ts";
import { dropPrivileges } from "./privileges.ts";
import { SmtpServer } from "./server.ts";

/** What main.ts gives a worker: the wiring of app.ts, and the IPC channel. */
export interface WorkerDeps {
  readonly createHost: (dirs: readonly string[]) => ServerHost;
  readonly loadPlugins: LoadPlugins;
  /** Sends a batch to the primary; `done` runs once it is written. */
  readonly send: (batch: Up[], done?: () => void) => void;
  readonly onMessage: (handler: (batch: Down[]) => void) => void;
}

export async function runWorker(cfg: WorkerConfig, deps: WorkerDeps): Promise<void> {
  const { send, onMessage } = deps;
  const out = new Outbox<Up>((batch) => send(batch));
  /** Tells the primary why this worker cannot start, then exits. */
  const fatal = (message: string): void => {
    out.flush();
    send([{ t: "fatal", message }], () => process.exit(1));
    // Should the channel not take it, the primary sees the exit anyway.
    setTimeout(() => process.exit(1), 2000);
  };
  /** What exists once the worker has started (messages and signals may come before). */
  const live: { host?: ServerHost; server?: SmtpServer; reloader?: Reloader } = {};
  let started = false;
  let serving = false;
  let stopping = false;
  const early: Down[] = [];
  const gate = new WorkerGate({ ...cfg, send: (m, urgent) => out.post(m, urgent) });
  const peerAddrs = new PeerAddrs();

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const { host, server } = live;
    if (!host || !server || !serving) process.exit(0);
    host.log(LOGINFO, `worker ${cfg.slot} (pid ${process.pid}): ${signal}, draining`, "server");
    void server.stop(cfg.shutdownGrace * 1000).then(() => {
      host.log(LOGINFO, `worker ${cfg.slot} (pid ${process.pid}) stopped`, "server");
      out.flush();
      process.exit(0);
    });
  };
  const handle = (m: Down): void => {
    switch (m.t) {
      case "lock":
      case "unlock":
      case "grant":
        gate.receive(m);
        break;
      case "addrs":
        peerAddrs.receive(m);
        break;
      case "stress":
        live.server?.setStressed(m.on);
        break;
      case "log":
        live.host?.log(m.level, m.message, "server", "primary");
        break;
      case "reload":
        void live.reloader?.reload();
        break;
      case "stop":
        stop(m.signal);
        break;
      case "observe":
        if (live.host && live.server) out.post({ t: "view", id: m.id, view: viewOf(live.host, live.server) }, true);
        break;
      case "hello":
        gate.hello(m.locked);
        live.server!.setStressed(m.stressed);
        live.server!.open();
        serving = true;
        live.host!.log(LOGINFO, `worker ${cfg.slot} (pid ${process.pid}) serving`, "server");
        break;
    }
  };
  onMessage((batch) => {
    for (const m of batch) {
      // Until it listens, a worker keeps what it is told (a stop is obeyed at once).
      if (m.t === "stop") stop(m.signal);
      else if (!started) early.push(m);
      else handle(m);
    }
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => void live.reloader?.reload());

  // As qpsmtpd-forkserver: the user switch comes before the plugins load. The primary binds the
  // sockets, so a worker never needs root.
  if (cfg.user) {
    try {
      dropPrivileges(cfg.user);
    } catch (e) {
      return fatal((e as Error).message);
    }
  }
  const host = (live.host = deps.createHost(cfg.dirs));
  let registry: Registry;
  try {
    registry = await firstGeneration(host, deps.loadPlugins);
  } catch (e) {
    return fatal((e as Error).message);
  }
  catchStrayErrors(host);
  const server = (live.server = new SmtpServer(registry, {
    listen: cfg.listen,
    limitConnections: cfg.limitConnections,
    maxFromIp: cfg.maxFromIp,
    gate,
    peers: { addrs: () => peerAddrs.list(), session: (ip, d) => out.post({ t: "session", ip, d }) },
  }));
  let bound;
  try {
    bound = await server.start();
  } catch (e) {
    return fatal(`cannot listen: ${(e as Error).message}`);
  }
  const subscribe = (r: Registry): void => out.post({ t: "subscribe", on: r.has("pre-connection") });
  live.reloader = new Reloader(host, server, deps.loadPlugins, subscribe);
  subscribe(registry);
  started = true;
  out.post({ t: "ready", bound }, true);
  for (const m of early.splice(0)) handle(m);
}
