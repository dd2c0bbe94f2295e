/**
 * The listeners: accepts connections, applies the connection limits and the pre-connection
 * hooks, runs a Session per connection, swaps plugin generations on reload and drains on shutdown.
 * In a cluster each worker runs one, with a Gate and Peers that count across the workers.
 * @module
 */
import { LOGERROR, LOGINFO, LOGNOTICE, LOGWARN } from "../api/codes.ts";
import { STALL_MS } from "../core/hook_runner.ts";
import { cidrContains, normaliseIp } from "../api/ip.ts";
import type { ListenSpec, ProxyListen } from "../config/settings.ts";
import { type Gate, LocalGate } from "./admission.ts";
import type { Timer } from "../core/clock.ts";
import type { Endpoints } from "../core/connection.ts";
import { preConnection } from "../core/pre_connection.ts";
import type { Registry } from "../core/registry.ts";
import { REPLIES, type Reply, replyLines } from "../core/replies.ts";
import { Session } from "../core/session.ts";
import { type AcceptedConnection, type BoundAddress, listen, type Listener } from "../runtime/sockets.ts";
import { ProxyHeaderReader, type ProxyStep } from "../smtp/proxy.ts";
import { formatReply } from "../smtp/reply.ts";

export interface ServerOptions {
  readonly listen: readonly ListenSpec[];
  /** `-c`: connections at once, 0 = unlimited. */
  readonly limitConnections: number;
  /** `-m`: connections at once from one IP address, 0 = unlimited. */
  readonly maxFromIp: number;
  /** Counts connections against `-c` and `-m`: this process's own by default. */
  readonly gate?: Gate;
  /** The other workers of a cluster: their sessions, and stress decided by the primary. */
  readonly peers?: Peers;
}

/** What a worker learns of, and tells, the other workers of its cluster. */
export interface Peers {
  /** The remote addresses of the other workers' sessions, one per session (`child_addrs`). */
  addrs(): readonly string[];
  /** This process's sessions as they start (1) and end (-1). */
  session(ip: string, d: 1 | -1): void;
}

export class SmtpServer {
  registry: Registry;
  readonly #opts: ServerOptions;
  readonly #listeners: Listener[] = [];
  readonly sessions = new Set<Session>();
  readonly #gate: Gate;
  #stopping = false;
  /** The event-loop watch's next tick, while sessions are open. */
  #tick: Timer | undefined;
  #open!: () => void;
  /**
   * Connections wait on this until `open()`: nothing is served before privileges are dropped.
   * Gone once open, so a connection then goes on without a turn of waiting on it.
   */
  #ready: Promise<void> | undefined = new Promise<void>((r) => (this.#open = r));

  constructor(registry: Registry, opts: ServerOptions) {
    this.registry = registry;
    this.#opts = opts;
    this.#gate = opts.gate ?? new LocalGate(opts);
    registry.host.maxConnIp = opts.maxFromIp;
  }

  /** Starts serving the connections that `start()` lets in (call it after dropping root). */
  open(): void {
    this.#open();
    this.#ready = undefined;
  }

  /** Binds every listener; resolves with the bound addresses. */
  async start(): Promise<BoundAddress[]> {
    for (const spec of this.#opts.listen) {
      const l = await listen(
        spec.host,
        spec.port,
        (c) => void this.#accept(c, spec),
        (e) => this.#log(LOGERROR, `listener ${spec.host}:${spec.port}: ${e.message}`),
      );
      this.#listeners.push(l);
    }
    return this.#listeners.map((l) => l.bound);
  }

  /**
   * Logs when something held the event loop (every connection waited), naming the plugin calls
   * that were running then: a plugin that computes for long must move the work off the loop. A
   * hold shows as a late tick, so the tick must be short (a hold overlaps it only if longer); it
   * runs while sessions are open, not in an idle daemon, which it would wake ten times a second.
   * The first session starts it, and the first tick with none open stops it: one at a time
   * (each connection the only one) does not make a timer each.
   */
  #watchEventLoop(): void {
    if (this.#tick !== undefined || this.sessions.size === 0 || this.#stopping) return;
    const clock = this.registry.host.clock;
    const every = 100;
    let last = performance.now();
    const tick = (): void => {
      const now = performance.now();
      const held = now - last - every;
      last = now;
      this.#tick = this.sessions.size > 0 && !this.#stopping ? clock.after(every, tick) : undefined;
      if (held <= STALL_MS) return;
      const running = [...this.registry.host.running].filter((r) => r.since < now - held).map((r) => `${r.plugin} (${r.hook})`);
      this.#log(
        LOGWARN,
        `the event loop was held for ${Math.round(held)} ms${running.length ? `; plugin calls running: ${running.join(", ")}` : ""}`,
      );
    };
    this.#tick = clock.after(every, tick);
  }

  /**
   * Postfix-style stress: while the open connections are at `stress_threshold` percent of the
   * limit, every read waits at most `stress_timeout`, so clients that trickle make room for real
   * ones. A session that lived through stress keeps the short timeouts (as a Postfix smtpd
   * started under stress does), so the last tricklers do not escape when the others are cut.
   */
  #updateStress(): void {
    if (this.#opts.peers) return; // the primary decides, from every worker's sessions
    const host = this.registry.host;
    const limit = this.#opts.limitConnections;
    let percent = 75;
    try {
      percent = host.configDir.int("stress_threshold", 75);
    } catch { /* reported by qpsmtpd check and by each session */ }
    const stressed = limit > 0 && this.sessions.size * 100 >= limit * Math.min(100, Math.max(1, percent));
    if (stressed === host.stressed) return;
    host.stressed = stressed;
    this.#log(
      LOGNOTICE,
      stressed ? `under stress: ${this.sessions.size} of ${limit} connections; reads now time out sooner` : "stress over",
    );
    for (const s of this.sessions) s.poke();
  }

  /** Stress as the primary of a cluster decided it (it logs the change). */
  setStressed(on: boolean): void {
    const host = this.registry.host;
    if (host.stressed === on) return;
    host.stressed = on;
    for (const s of this.sessions) s.poke();
  }

  #log(level: number, message: string): void {
    this.registry.host.log(level, message, "server");
  }

  #refuse(c: AcceptedConnection, reply: Reply): void {
    c.refuse(formatReply(reply.code, replyLines(reply, undefined, false)));
  }

  /**
   * A PROXY listener's first step: the peer must be a trusted proxy and send a valid header in
   * time; then the client it names replaces the socket's peer. Anything else is logged and
   * closed without a word (the client behind a proxy should not learn why). Resolves with the
   * endpoints to use and the proxy's own address, or undefined when the connection was closed.
   */
  async #readProxyHeader(
    c: AcceptedConnection,
    proxy: ProxyListen,
    socket: Endpoints,
  ): Promise<{ endpoints: Endpoints; via: { remote_ip: string; remote_port: number } } | undefined> {
    const peer = `${socket.remote_ip}:${socket.remote_port}`;
    if (!proxy.trusted.some((t) => cidrContains(t, socket.remote_ip))) {
      this.#log(LOGNOTICE, `PROXY listener ${socket.local_ip}:${socket.local_port}: ${peer} is not in proxy_trusted; closing`);
      c.destroy();
      return undefined;
    }
    const reader = new ProxyHeaderReader();
    let timer: Timer | undefined;
    const timeUp = new Promise<void>((r) => (timer = this.registry.host.clock.after(proxy.timeoutMs, r)));
    const r = await c.readPreamble((chunk): ProxyStep | undefined => {
      const step = reader.push(chunk);
      return step.state === "more" ? undefined : step;
    }, timeUp);
    timer?.cancel();
    if (r === "timeout" || r === "closed" || r.state !== "done") {
      const why = r === "timeout"
        ? `no complete PROXY header within ${proxy.timeoutMs / 1000} s (${reader.buffered} bytes)`
        : r === "closed"
        ? "closed before a complete PROXY header"
        : `bad PROXY header: ${r.state === "error" ? r.reason : ""}`;
      this.#log(LOGNOTICE, `${peer}: ${why}; closing`);
      c.destroy();
      return undefined;
    }
    const { header, rest } = r;
    c.unread(rest);
    const a = header.addresses;
    const endpoints = a
      ? {
        remote_ip: normaliseIp(a.source.ip),
        remote_port: a.source.port,
        local_ip: normaliseIp(a.destination.ip),
        local_port: a.destination.port,
      }
      : socket;
    this.#log(
      LOGINFO,
      `PROXY v${header.version} ${header.kind} from ${peer}: client ${endpoints.remote_ip}:${endpoints.remote_port}` +
        ` to ${endpoints.local_ip}:${endpoints.local_port}${header.tlvs ? ` (${header.tlvs} TLVs ignored)` : ""}`,
    );
    return { endpoints, via: { remote_ip: socket.remote_ip, remote_port: socket.remote_port } };
  }

  async #accept(c: AcceptedConnection, spec: ListenSpec): Promise<void> {
    if (this.#ready) await this.#ready;
    const registry = this.registry;
    let endpoints: Endpoints = {
      remote_ip: normaliseIp(c.remoteAddress),
      remote_port: c.remotePort,
      local_ip: normaliseIp(c.localAddress),
      local_port: c.localPort || spec.port,
    };
    // Before anything else: the limits, the pre-connection hooks and the session see the real client.
    let via: { remote_ip: string; remote_port: number } | undefined;
    const metrics = registry.host.metrics;
    if (spec.proxy) {
      const got = await this.#readProxyHeader(c, spec.proxy, endpoints);
      if (!got) {
        metrics.refused.inc({ reason: "proxy" });
        return;
      }
      ({ endpoints, via } = got);
    }
    const remote = endpoints.remote_ip;
    if (this.#stopping) {
      metrics.refused.inc({ reason: "shutdown" });
      this.#refuse(c, REPLIES.shuttingDown(registry.host.me));
      return;
    }
    // Counted from here to the end of the session, pre-connection hooks and TLS handshake included.
    const admitted = this.#gate.admit(remote);
    const verdict = admitted instanceof Promise ? await admitted : admitted;
    if (!verdict.ok) {
      metrics.refused.inc({ reason: verdict.limit === "total" ? "limit" : "per_ip" });
      if (verdict.limit === "total") {
        this.#log(LOGNOTICE, `too many connections (${verdict.count}), refusing ${remote}`);
        this.#refuse(c, REPLIES.tooManyConnections);
      } else {
        this.#log(LOGNOTICE, `too many connections from ${remote} (${verdict.count})`);
        this.#refuse(c, REPLIES.tooManyFromIp);
      }
      return;
    }
    const peers = this.#opts.peers;
    // From the session's start the gate is released when it ends, not when this returns.
    let served = false;
    try {
      if (registry.has("pre-connection")) {
        const own = [...this.sessions].map((s) => s.connection.remote_ip);
        const refusal = await preConnection(registry, {
          ...endpoints,
          max_conn_ip: this.#opts.maxFromIp,
          child_addrs: peers ? own.concat(peers.addrs()) : own,
        });
        if (refusal) {
          metrics.refused.inc({ reason: "pre_connection" });
          c.refuse(refusal);
          return;
        }
      }
      let cipher: string | undefined;
      if (spec.tls) {
        if (registry.tlsContext === undefined) {
          this.#log(LOGERROR, "implicit-TLS listener but no plugin offered TLS (load the tls plugin); closing");
          c.destroy();
          return;
        }
        cipher = await c.secure(registry.tlsContext).catch((e: Error) => {
          this.#log(LOGINFO, `TLS handshake with ${remote} failed: ${e.message}`);
          return undefined;
        });
        metrics.tlsHandshakes.inc({ kind: "implicit", result: cipher === undefined ? "failed" : "ok" });
        if (cipher === undefined) return;
      }
      const transport = c.open();
      const session = new Session({
        registry,
        transport,
        endpoints,
        ...(cipher ? { tlsCipher: cipher } : {}),
      });
      transport.start(session);
      if (via) session.connection.notes("proxy", via);
      this.#serve(session, remote);
      served = true;
    } finally {
      if (!served) this.#gate.release(remote);
    }
  }

  /**
   * Runs `session` and counts it until it ends. Not awaited by #accept, so an open connection
   * holds no suspended accept (its frame and promise) for as long as it lasts.
   */
  #serve(session: Session, remote: string): void {
    const metrics = this.registry.host.metrics;
    const peers = this.#opts.peers;
    this.sessions.add(session);
    this.#watchEventLoop();
    metrics.connections.inc();
    metrics.connectionsOpen.inc();
    peers?.session(remote, 1);
    this.#updateStress();
    const ended = (): void => {
      metrics.connectionsOpen.dec();
      this.sessions.delete(session);
      peers?.session(remote, -1);
      this.#updateStress();
      this.#gate.release(remote);
    };
    session.run().then(ended, (e: Error) => {
      this.#log(LOGERROR, `session ${session.connection.id} with ${remote} failed: ${e.stack ?? e.message}`);
      ended();
    });
  }

  /** The open sessions, each with its client and where it is (for `qpsmtpd status`). */
  observe(): Array<{ readonly ip: string; readonly state: string }> {
    return [...this.sessions].map((s) => {
      const c = s.connection;
      const state = s.closed ? "closing" : !c.hello ? "greeting" : s.hasTransaction() && s.transaction.sender() ? "transaction" : "idle";
      return { ip: c.remote_ip, state };
    });
  }

  /** Stops accepting; lets open transactions finish for `graceMs`, then ends the rest with 421. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#tick?.cancel();
    this.#tick = undefined;
    for (const l of this.#listeners) l.close();
    for (const s of this.sessions) s.drain();
    const all = Promise.all([...this.sessions].map((s) => s.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      await Promise.all([...this.sessions].map((s) => s.abort()));
      await Promise.race([all, new Promise((r) => setTimeout(r, 2000))]);
    }
  }
}
