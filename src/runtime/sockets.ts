/**
 * Sockets and TLS, the one place that touches them: listeners, accepted connections, the
 * transport a session writes to, and the TLS upgrade (STARTTLS and implicit TLS). Built on
 * `node:net` and `node:tls`, which Bun and Deno both provide.
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { TlsOptions } from "../api/tls.ts";
import { acceptOnBunSockets, bunHandle } from "./bun_sockets.ts";
import type { AcceptedConnection, InputHandlers, SessionTransport } from "./connection.ts";

export type { AcceptedConnection, InputHandlers, SessionTransport };

const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Bytes a client may send after a preamble before its session opens (reading is paused then). */
const HELD_MAX = 64 * 1024;

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export interface Listener {
  readonly bound: BoundAddress;
  close(): void;
}

/** Builds a TLS context from a plugin's certificate and key; throws when they are unusable. */
export function createTlsContext(options: TlsOptions): tls.SecureContext {
  return tls.createSecureContext({
    cert: toPem(options.cert),
    key: toPem(options.key),
    ...(options.ca ? { ca: toPem(options.ca) } : {}),
    minVersion: "TLSv1.2",
    ...(options.ciphers ? { ciphers: options.ciphers } : {}),
  });
}

function toPem(x: string | Uint8Array): string | Buffer {
  return typeof x === "string" ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

/**
 * Listens on `host:port`; `onAccept` gets each new connection. node:net binds (in a cluster
 * worker it gets the primary's socket); under Bun the connections are Bun's own sockets.
 */
export function listen(
  host: string,
  port: number,
  onAccept: (c: AcceptedConnection) => void,
  onError: (e: Error) => void,
): Promise<Listener> {
  const srv = net.createServer({ pauseOnConnect: false }, (sock) => {
    sock.on("error", () => undefined);
    onAccept(new NodeConnection(sock));
  });
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, host, () => {
      srv.off("error", reject);
      srv.on("error", onError);
      const bun = bunHandle(srv);
      if (bun) acceptOnBunSockets(bun, onAccept);
      const a = srv.address() as net.AddressInfo;
      resolve({ bound: { address: a.address, port: a.port }, close: () => srv.close() });
    });
  });
}

/** An accepted net.Socket (Deno, or a Bun whose listener cannot hand over its sockets). */
class NodeConnection implements AcceptedConnection {
  #sock: net.Socket;
  /** Set once a preamble was read: the client's bytes since, for the session, and whether it left. */
  #held: { chunks: Uint8Array[]; size: number; ended: boolean; release: () => void } | undefined;

  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(sock: net.Socket) {
    this.#sock = sock;
    this.remoteAddress = sock.remoteAddress ?? "";
    this.remotePort = sock.remotePort ?? 0;
    this.localAddress = sock.localAddress ?? "";
    this.localPort = sock.localPort ?? 0;
  }

  /**
   * Reads what a client sends before the protocol starts (a PROXY header): each chunk goes to
   * `take` until it returns something other than undefined, which this resolves with; or
   * "timeout" when `timeUp` settles first (the caller's clock), or "closed" when the client left
   * first. Reading then pauses until `open`; bytes that `take` did not use go back with `unread`.
   */
  readPreamble<T>(take: (chunk: Uint8Array) => T | undefined, timeUp: Promise<unknown>): Promise<T | "timeout" | "closed"> {
    const s = this.#sock;
    return new Promise((resolve) => {
      let settled = false;
      const held = { chunks: [] as Uint8Array[], size: 0, ended: false, release: () => undefined as void };
      const finish = (r: T | "timeout" | "closed"): void => {
        if (settled) return;
        settled = true;
        s.pause();
        this.#held = held;
        resolve(r);
      };
      const onData = (d: Buffer): void => {
        if (!settled) {
          const r = take(d);
          if (r !== undefined) finish(r);
          return;
        }
        // A runtime may deliver a chunk it had already read after pause(): keep it for the session.
        held.chunks.push(d);
        held.size += d.length;
        if (held.size > HELD_MAX) s.destroy();
      };
      const onGone = (): void => {
        held.ended = true;
        finish("closed");
      };
      void timeUp.then(() => finish("timeout"));
      held.release = () => {
        s.off("data", onData);
        s.off("end", onGone);
        s.off("close", onGone);
        s.off("error", onGone);
      };
      s.on("data", onData);
      s.on("end", onGone);
      s.on("close", onGone);
      s.on("error", onGone);
      if (s.destroyed) onGone();
    });
  }

  unread(bytes: Uint8Array): void {
    if (bytes.length === 0 || !this.#held) return;
    this.#held.chunks.unshift(bytes);
    this.#held.size += bytes.length;
  }

  /** Writes `text` and closes (a refusal before any session). */
  refuse(text: string): void {
    this.#sock.end(text);
  }

  destroy(): void {
    this.#sock.destroy();
  }

  async secure(context: unknown): Promise<string> {
    const t = await handshake(this.#sock, context as tls.SecureContext);
    this.#sock = t;
    return t.getCipher()?.name ?? "unknown";
  }

  open(): SessionTransport {
    const held = this.#held;
    this.#held = undefined;
    held?.release();
    return new NodeTransport(this.#sock, held);
  }
}

class NodeTransport implements SessionTransport {
  #sock: net.Socket;
  /** close() was called: the second call (a session closes as it disconnects, and as it ends) does nothing. */
  #closing = false;
  #held: { chunks: Uint8Array[]; ended: boolean } | undefined;
  #onData: (d: Buffer) => void = () => undefined;
  #onEnd: () => void = () => undefined;

  constructor(sock: net.Socket, held: { chunks: Uint8Array[]; ended: boolean } | undefined) {
    this.#sock = sock;
    this.#held = held;
    sock.setNoDelay(true);
  }

  start(input: InputHandlers): void {
    const s = this.#sock;
    const held = this.#held;
    this.#held = undefined;
    this.#onData = (d) => input.feed(d);
    this.#onEnd = () => input.end();
    this.#attach(s);
    queueMicrotask(() => {
      for (const c of held?.chunks ?? []) input.feed(c);
      if (held?.ended || s.destroyed) input.end();
      else if (held) s.resume();
    });
  }

  #attach(s: net.Socket): void {
    s.on("data", this.#onData);
    s.on("end", this.#onEnd);
    s.on("close", this.#onEnd);
    s.on("error", this.#onEnd);
  }

  #detach(s: net.Socket): void {
    s.off("data", this.#onData);
    s.off("end", this.#onEnd);
    s.off("close", this.#onEnd);
  }

  write(data: string): void {
    if (!this.#sock.destroyed) this.#sock.write(data);
  }

  backlog(): number {
    return this.#sock.destroyed ? 0 : this.#sock.writableLength;
  }

  drained(): Promise<void> {
    const s = this.#sock;
    if (s.destroyed || s.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        s.off("drain", done);
        s.off("close", done);
        resolve();
      };
      s.on("drain", done);
      s.on("close", done);
    });
  }

  abort(): void {
    this.#sock.destroy();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const s = this.#sock;
    s.end();
    if (s.destroyed) return;
    // A client that never closes its side is cut after 2 s. The timer goes as soon as the socket
    // closes: while it runs it holds the socket, and through its listeners the whole session.
    const t = setTimeout(() => s.destroy(), 2000);
    t.unref?.();
    s.once("close", () => clearTimeout(t));
  }

  pause(): void {
    this.#sock.pause();
  }

  resume(): void {
    this.#sock.resume();
  }

  /** Upgrades to TLS (STARTTLS, after the 220 was written); resolves with the cipher name. */
  async startTls(context: unknown): Promise<string> {
    this.#detach(this.#sock);
    const t = await handshake(this.#sock, context as tls.SecureContext);
    this.#sock = t;
    this.#attach(t);
    return t.getCipher()?.name ?? "unknown";
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
