/**
 * The listeners: accepts connections, applies the connection limits and the pre-connection
 * hooks, runs a Session per socket, swaps plugin generations on reload and drains on shutdown.
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { randomBytes } from "node:crypto";
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, LOGERROR, LOGINFO, LOGNOTICE } from "../core/codes.ts";
import { normaliseIp } from "../core/connection.ts";
import { runHooks, type RunContext } from "../core/hook_runner.ts";
import { Session, type Transport } from "../core/session.ts";
import { Transaction } from "../core/transaction.ts";
import type { Registry } from "../plugin/registry.ts";
import { formatReply } from "../smtp/reply.ts";

export interface ListenSpec {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (port 465 style): the handshake comes before the greeting. */
  readonly tls: boolean;
}

export interface ServerOptions {
  readonly listen: readonly ListenSpec[];
  /** `-c`: connections at once, 0 = unlimited. */
  readonly limitConnections: number;
  /** `-m`: connections at once from one IP address, 0 = unlimited. */
  readonly maxFromIp: number;
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

export class SmtpServer {
  registry: Registry;
  readonly #opts: ServerOptions;
  readonly #servers: net.Server[] = [];
  readonly sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  #stopping = false;
  #open!: () => void;
  /** Connections wait on this until `open()`: nothing is served before privileges are dropped. */
  readonly #ready = new Promise<void>((r) => (this.#open = r));

  constructor(registry: Registry, opts: ServerOptions) {
    this.registry = registry;
    this.#opts = opts;
  }

  /** Starts serving the connections that `start()` lets in (call it after dropping root). */
  open(): void {
    this.#open();
  }

  /** Binds every listener; resolves with the bound addresses. */
  async start(): Promise<net.AddressInfo[]> {
    const out: net.AddressInfo[] = [];
    for (const spec of this.#opts.listen) {
      const srv = net.createServer({ pauseOnConnect: false }, (sock) => void this.#accept(sock, spec));
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(spec.port, spec.host, () => {
          srv.off("error", reject);
          resolve();
        });
      });
      srv.on("error", (e) => this.#log(LOGERROR, `listener ${spec.host}:${spec.port}: ${e.message}`));
      this.#servers.push(srv);
      out.push(srv.address() as net.AddressInfo);
    }
    return out;
  }

  #log(level: number, message: string): void {
    this.registry.host.log(level, message, "server");
  }

  async #accept(raw: net.Socket, spec: ListenSpec): Promise<void> {
    raw.on("error", () => undefined);
    await this.#ready;
    const registry = this.registry;
    const remote = normaliseIp(raw.remoteAddress ?? "");
    const info = {
      remote_ip: remote,
      remote_port: raw.remotePort ?? 0,
      local_ip: normaliseIp(raw.localAddress ?? ""),
      local_port: raw.localPort ?? spec.port,
    };
    if (this.#stopping) {
      raw.end("421 4.3.2 Service shutting down\r\n");
      return;
    }
    const { limitConnections, maxFromIp } = this.#opts;
    if (limitConnections > 0 && this.sessions.size >= limitConnections) {
      this.#log(LOGNOTICE, `too many connections (${this.sessions.size}), refusing ${remote}`);
      raw.end("421 4.3.2 Too many connections, try again later\r\n");
      return;
    }
    const fromIp = this.#perIp.get(remote) ?? 0;
    if (maxFromIp > 0 && fromIp >= maxFromIp) {
      this.#log(LOGNOTICE, `too many connections from ${remote} (${fromIp})`);
      raw.end("421 4.7.0 Too many connections from your address, try again later\r\n");
      return;
    }
    this.#perIp.set(remote, fromIp + 1);
    try {
      const refusal = await this.#preConnection(registry, info);
      if (refusal) {
        raw.end(refusal);
        return;
      }
      let sock: net.Socket = raw;
      let cipher: string | undefined;
      if (spec.tls) {
        const ctx = registry.host.tls_context;
        if (!ctx) {
          this.#log(LOGERROR, "implicit-TLS listener but no tls plugin loaded; closing");
          raw.destroy();
          return;
        }
        const t = await handshake(raw, ctx).catch((e: Error) => {
          this.#log(LOGINFO, `TLS handshake with ${remote} failed: ${e.message}`);
          return undefined;
        });
        if (!t) return;
        sock = t;
        cipher = t.getCipher()?.name ?? "unknown";
      }
      await this.#serve(sock, registry, info, cipher);
    } finally {
      const n = (this.#perIp.get(remote) ?? 1) - 1;
      if (n <= 0) this.#perIp.delete(remote);
      else this.#perIp.set(remote, n);
    }
  }

  /** Runs pre-connection hooks; returns the reply when a plugin refused the client. */
  async #preConnection(
    registry: Registry,
    info: { remote_ip: string; remote_port: number; local_ip: string; local_port: number },
  ): Promise<string | undefined> {
    if (!registry.has("pre-connection")) return undefined;
    const ctx: RunContext = {
      registry,
      view: (p, hook) => {
        p._hook = hook;
        return p;
      },
      log: (level, message, hook, plugin) => registry.host.log(level, message, hook, plugin),
      notesFor: () => undefined,
    };
    const r = await runHooks(ctx, "pre-connection", new Transaction(), [{
      ...info,
      max_conn_ip: this.#opts.maxFromIp,
      child_addrs: [...this.sessions].map((s) => s.connection.remote_ip),
    }]);
    if (r.code === DENY || r.code === DENY_DISCONNECT) {
      return formatReply(550, r.msg.length ? r.msg : ["Sorry, service not available for you"]);
    }
    if (r.code === DENYSOFT || r.code === DENYSOFT_DISCONNECT) {
      return formatReply(451, r.msg.length ? r.msg : ["Sorry, try again later"]);
    }
    return undefined;
  }

  async #serve(first: net.Socket, registry: Registry, info: ConstructorParameters<typeof Session>[0]["info"], cipher: string | undefined): Promise<void> {
    let sock = first;
    sock.setNoDelay(true);
    let session: Session | undefined;
    const onData = (d: Buffer): void => session?.feed(d);
    const onEnd = (): void => session?.end();
    const attach = (s: net.Socket): void => {
      s.on("data", onData);
      s.on("end", onEnd);
      s.on("close", onEnd);
      s.on("error", onEnd);
    };
    const detach = (s: net.Socket): void => {
      s.off("data", onData);
      s.off("end", onEnd);
      s.off("close", onEnd);
    };
    const transport: Transport = {
      write: (data) => {
        if (!sock.destroyed) sock.write(data);
      },
      close: () => {
        sock.end();
        setTimeout(() => sock.destroy(), 2000).unref?.();
      },
      pause: () => sock.pause(),
      resume: () => sock.resume(),
      startTls: async (context) => {
        detach(sock);
        const t = await handshake(sock, context);
        sock = t;
        attach(t);
        return t.getCipher()?.name ?? "unknown";
      },
    };
    session = new Session({ registry, transport, info, id: randomBytes(4).toString("hex"), ...(cipher ? { tlsCipher: cipher } : {}) });
    this.sessions.add(session);
    attach(sock);
    try {
      await session.run();
    } finally {
      this.sessions.delete(session);
    }
  }

  /** Stops accepting; lets open transactions finish for `graceMs`, then ends the rest with 421. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    for (const s of this.#servers) s.close();
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

/** Server-side TLS handshake on an accepted socket, with a time limit. */
function handshake(sock: net.Socket, context: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = new tls.TLSSocket(sock, { isServer: true, secureContext: context });
    const timer = setTimeout(() => {
      t.destroy();
      reject(new Error("TLS handshake timed out"));
    }, HANDSHAKE_TIMEOUT_MS);
    t.once("secure", () => {
      clearTimeout(timer);
      resolve(t);
    });
    t.once("error", (e) => {
      clearTimeout(timer);
      t.destroy();
      reject(e);
    });
  });
}
