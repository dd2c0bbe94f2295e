/**
 * Sockets and TLS, the one place that touches them: listeners, accepted connections, the
 * transport a session writes to, and the TLS upgrade (STARTTLS and implicit TLS). Built on
 * `node:net` and `node:tls`, which Bun and Deno both provide.
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { TlsOptions } from "../api/tls.ts";

const HANDSHAKE_TIMEOUT_MS = 30_000;

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export interface Listener {
  readonly bound: BoundAddress;
  close(): void;
}

export interface InputHandlers {
  data(chunk: Uint8Array): void;
  /** The client closed its side, or the socket failed. */
  end(): void;
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

/** Listens on `host:port`; `onAccept` gets each new connection. */
export function listen(
  host: string,
  port: number,
  onAccept: (c: AcceptedConnection) => void,
  onError: (e: Error) => void,
): Promise<Listener> {
  const srv = net.createServer({ pauseOnConnect: false }, (sock) => {
    sock.on("error", () => undefined);
    onAccept(new AcceptedConnection(sock));
  });
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, host, () => {
      srv.off("error", reject);
      srv.on("error", onError);
      const a = srv.address() as net.AddressInfo;
      resolve({ bound: { address: a.address, port: a.port }, close: () => srv.close() });
    });
  });
}

/** A connection the listener accepted, before its session starts. */
export class AcceptedConnection {
  #sock: net.Socket;

  constructor(sock: net.Socket) {
    this.#sock = sock;
  }

  get remoteAddress(): string {
    return this.#sock.remoteAddress ?? "";
  }

  get remotePort(): number {
    return this.#sock.remotePort ?? 0;
  }

  get localAddress(): string {
    return this.#sock.localAddress ?? "";
  }

  get localPort(): number {
    return this.#sock.localPort ?? 0;
  }

  /** Writes `text` and closes (a refusal before any session). */
  refuse(text: string): void {
    this.#sock.end(text);
  }

  destroy(): void {
    this.#sock.destroy();
  }

  /** Implicit TLS: the handshake before anything is said. Resolves with the cipher name. */
  async secure(context: unknown): Promise<string> {
    const t = await handshake(this.#sock, context as tls.SecureContext);
    this.#sock = t;
    return t.getCipher()?.name ?? "unknown";
  }

  /** Starts delivering the client's bytes to `handlers`; the session writes to the transport. */
  open(handlers: InputHandlers): SocketTransport {
    return new SocketTransport(this.#sock, handlers);
  }
}

/** What a session writes to: output, back-pressure, STARTTLS and close. */
export class SocketTransport {
  #sock: net.Socket;
  readonly #onData: (d: Buffer) => void;
  readonly #onEnd: () => void;

  constructor(sock: net.Socket, handlers: InputHandlers) {
    this.#sock = sock;
    this.#onData = (d) => handlers.data(d);
    this.#onEnd = () => handlers.end();
    sock.setNoDelay(true);
    this.#attach(sock);
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
    const s = this.#sock;
    s.end();
    setTimeout(() => s.destroy(), 2000).unref?.();
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
