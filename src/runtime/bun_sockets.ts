/**
 * Accepted connections on Bun's own sockets. node:net's listener still binds (and, in a cluster
 * worker, receives the shared socket from the primary); its Bun handle is then given these
 * handlers, so each connection is a bare Bun socket instead of a net.Socket stream on top of
 * one: about 2 KiB less per connection and less CPU per message. Bun's socket writes do not
 * buffer, so the output a client has not taken is kept here.
 * @module
 */
import type * as tls from "node:tls";
import type { AcceptedConnection, InputHandlers, SessionTransport } from "./connection.ts";

const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Bytes held for a connection whose session has not opened yet; reading pauses above it. */
const HOLD_PAUSE = 16 * 1024;
/** Held bytes past which the client is cut (it went on sending while reading was paused). */
const HELD_MAX = 64 * 1024;
/** A client that does not close its side after ours is cut after this. */
const CLOSE_WAIT_MS = 2000;

/**
 * Client bytes, over every connection, between two full collections. Each read is a new buffer
 * outside the JavaScript heap, which the collector weighs late: a burst of large messages left
 * tens of MB of dead read buffers (50 sessions of 100 KB messages: peak RSS 150 MB, 122 MB with
 * this). A collection takes about 30 ms then: 0.1 ms per 100 KB message, 0.004 per 4 KB one.
 */
const COLLECT_EVERY_BYTES = 32 * 1024 * 1024;
let receivedSinceCollect = 0;
const collect = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun?.gc;

/** The part of Bun's Socket used here (Bun's types are not Deno's; this module only runs under Bun). */
interface BunSocket {
  data: BunConnection | undefined;
  write(data: string | Uint8Array): number;
  end(data?: string): unknown;
  terminate(): void;
  pause(): void;
  resume(): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  upgradeTLS(options: {
    tls: { secureContext: unknown };
    isServer: boolean;
    data: BunConnection;
    socket: typeof HANDLERS;
  }): [BunSocket, BunSocket];
  getCipher(): { name?: string } | null | undefined;
}

/** A node:net server's handle under Bun: the Bun listener, whose handlers can be replaced. */
interface BunListenerHandle {
  reload(options: { socket: typeof HANDLERS }): void;
}

/** node:net's listener, if it is Bun's and lets its handlers be replaced (else the caller keeps node:net's sockets). */
export function bunHandle(server: unknown): BunListenerHandle | undefined {
  const h = (server as { _handle?: Partial<BunListenerHandle> })._handle;
  return typeof h?.reload === "function" ? h as BunListenerHandle : undefined;
}

/** Gives every connection `handle` accepts from now on to `onAccept`, as a BunConnection. */
export function acceptOnBunSockets(handle: BunListenerHandle, onAccept: (c: BunConnection) => void): void {
  handle.reload({ socket: { ...HANDLERS, open: (s: BunSocket) => onAccept(new BunConnection(s)) } });
}

/** Bun calls these for every socket of the listener; `s.data` is its connection. */
const HANDLERS = {
  open(_s: BunSocket): void {},
  data(s: BunSocket, d: Uint8Array): void {
    s.data?.onData(s, d);
  },
  end(s: BunSocket): void {
    s.data?.onEnd(s);
  },
  close(s: BunSocket): void {
    s.data?.onClose();
  },
  drain(s: BunSocket): void {
    s.data?.onDrain(s);
  },
  error(): void {
    // The close that follows ends the session.
  },
  handshake(s: BunSocket, ok: boolean, error: Error | null): void {
    s.data?.onHandshake(s, ok, error);
  },
};

/** One accepted connection: what the server reads a preamble from, then the session's transport. */
export class BunConnection implements AcceptedConnection, SessionTransport {
  /** The socket read and written: the raw one, then the TLS one after an upgrade. */
  #sock: BunSocket;
  #input: InputHandlers | undefined;
  /** While a preamble is read: where each chunk goes. */
  #take: ((chunk: Uint8Array) => void) | undefined;
  /** Bytes that came before the session took its input (or after a preamble), in order. */
  #held: Uint8Array[] | undefined;
  #heldSize = 0;
  #paused = false;
  /** The client half-closed or left before the session took its input. */
  #ended = false;
  #closed = false;
  #closing = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Output the kernel did not take yet, oldest first. */
  #out: Uint8Array[] | undefined;
  #outSize = 0;
  #endWhenFlushed = false;
  #drainWaiters: Array<() => void> | undefined;
  /** A preamble being read: told when the client leaves. */
  #onGone: (() => void) | undefined;
  #handshake: { resolve(cipher: string): void; reject(e: Error): void } | undefined;

  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(sock: BunSocket) {
    this.#sock = sock;
    this.remoteAddress = sock.remoteAddress ?? "";
    this.remotePort = sock.remotePort ?? 0;
    this.localAddress = sock.localAddress ?? "";
    this.localPort = sock.localPort ?? 0;
    sock.data = this;
    // No setNoDelay: Bun sets TCP_NODELAY on every socket it accepts.
  }

  // ---- events (from HANDLERS) -------------------------------------------------------------

  onData(s: BunSocket, d: Uint8Array): void {
    // After an upgrade the raw socket still reports the ciphertext it passes to TLS.
    if (s !== this.#sock) return;
    receivedSinceCollect += d.length;
    if (receivedSinceCollect > COLLECT_EVERY_BYTES) {
      receivedSinceCollect = 0;
      collect?.(true);
    }
    if (this.#input) this.#input.feed(d);
    else if (this.#take) this.#take(d);
    else this.#hold(d);
  }

  onEnd(s: BunSocket): void {
    if (s !== this.#sock) return;
    this.#left();
  }

  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#closeTimer);
    this.#out = undefined;
    this.#outSize = 0;
    this.#flushWaiters();
    this.#handshake?.reject(new Error("the client closed the connection during the TLS handshake"));
    this.#handshake = undefined;
    this.#left();
  }

  onDrain(s: BunSocket): void {
    if (s !== this.#sock) return;
    const out = this.#out;
    while (out && out.length > 0) {
      const chunk = out[0]!;
      const n = s.write(chunk);
      if (n < 0) return;
      this.#outSize -= Math.min(n, chunk.length);
      if (n < chunk.length) {
        out[0] = chunk.subarray(n);
        return;
      }
      out.shift();
    }
    this.#out = undefined;
    this.#flushWaiters();
    if (this.#endWhenFlushed) this.#sock.end();
  }

  onHandshake(s: BunSocket, ok: boolean, error: Error | null): void {
    const h = this.#handshake;
    if (s !== this.#sock || !h) return;
    this.#handshake = undefined;
    // No client certificate is asked for: `error` then only says the client sent none.
    if (ok) h.resolve(s.getCipher()?.name ?? "unknown");
    else {
      h.reject(error ?? new Error("TLS handshake failed"));
      s.terminate();
    }
  }

  #left(): void {
    if (this.#input) {
      this.#input.end();
      return;
    }
    this.#ended = true;
    this.#onGone?.();
  }

  #hold(d: Uint8Array): void {
    (this.#held ??= []).push(d);
    this.#heldSize += d.length;
    if (this.#heldSize > HELD_MAX) this.#sock.terminate();
    else if (this.#heldSize > HOLD_PAUSE && !this.#paused) this.pause();
  }

  #flushWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    for (const w of waiters ?? []) w();
  }

  // ---- before the session (AcceptedConnection) --------------------------------------------

  readPreamble<T>(take: (chunk: Uint8Array) => T | undefined, timeUp: Promise<unknown>): Promise<T | "timeout" | "closed"> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: T | "timeout" | "closed"): void => {
        if (settled) return;
        settled = true;
        this.#take = undefined;
        this.#onGone = undefined;
        this.pause();
        resolve(r);
      };
      this.#take = (d) => {
        const r = take(d);
        if (r !== undefined) finish(r);
      };
      if (this.#ended || this.#closed) return finish("closed");
      this.#onGone = () => finish("closed");
      void timeUp.then(() => finish("timeout"));
    });
  }

  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    (this.#held ??= []).unshift(bytes);
    this.#heldSize += bytes.length;
  }

  refuse(text: string): void {
    this.write(text);
    this.close();
  }

  /** Closes without a word: a FIN, as net.Socket's destroy (a reset would reach a client still connecting). */
  destroy(): void {
    this.close();
  }

  secure(context: unknown): Promise<string> {
    return this.startTls(context);
  }

  open(): SessionTransport {
    return this;
  }

  start(input: InputHandlers): void {
    queueMicrotask(() => {
      const held = this.#held ?? [];
      this.#held = undefined;
      this.#heldSize = 0;
      for (const c of held) input.feed(c);
      this.#input = input;
      if (this.#ended || this.#closed) input.end();
      else if (this.#paused) this.resume();
    });
  }

  // ---- the session's transport ------------------------------------------------------------

  write(data: string): void {
    if (this.#closed || this.#closing) return; // as net.Socket: nothing is written after end()
    if (this.#out) {
      this.#queue(Buffer.from(data));
      return;
    }
    // Bun answers in bytes (an SMTPUTF8 reply has more bytes than characters); -1 once closed.
    const n = this.#sock.write(data);
    if (n >= Buffer.byteLength(data)) return;
    this.#queue(Buffer.from(data).subarray(Math.max(0, n)));
  }

  #queue(bytes: Uint8Array): void {
    (this.#out ??= []).push(bytes);
    this.#outSize += bytes.length;
  }

  backlog(): number {
    return this.#outSize;
  }

  drained(): Promise<void> {
    if (this.#closed || this.#outSize === 0) return Promise.resolve();
    return new Promise((r) => (this.#drainWaiters ??= []).push(r));
  }

  abort(): void {
    if (!this.#closed) this.#sock.terminate();
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.#outSize > 0) this.#endWhenFlushed = true;
    else this.#sock.end();
    // Bun closes at once (its close handler has run) unless output waits: no timer for those.
    if (this.#closed) return;
    this.#closeTimer = setTimeout(() => this.abort(), CLOSE_WAIT_MS);
    (this.#closeTimer as { unref?: () => void }).unref?.();
  }

  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#sock.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.#sock.resume();
  }

  /** STARTTLS (after the 220 was flushed) or implicit TLS: resolves with the cipher name. */
  async startTls(context: unknown): Promise<string> {
    // Once the 220 is out, and in the same turn: no client bytes can come between it and TLS.
    await this.drained();
    if (this.#closed) throw new Error("the client closed the connection before the TLS handshake");
    const [, t] = this.#sock.upgradeTLS({
      tls: { secureContext: (context as tls.SecureContext & { context: unknown }).context },
      isServer: true,
      data: this,
      socket: HANDLERS,
    });
    this.#sock = t;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#handshake = undefined;
        t.terminate();
        reject(new Error("TLS handshake timed out"));
      }, HANDSHAKE_TIMEOUT_MS);
      this.#handshake = {
        resolve: (c) => (clearTimeout(timer), resolve(c)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }
}
