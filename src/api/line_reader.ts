/**
 * Lines from a backend's socket, each awaited within a time limit: for the line protocols of
 * daemons a plugin asks (Dovecot's auth service, vpopmaild, IMAP).
 *
 * ```ts
 * const r = new LineReader({ timeoutMs: 5000, peer: "vpopmaild" }, await connectBackend(target, 5000, this.signal));
 * const greeting = await r.next(); // "+OK ...", or throws: timed out, closed, a line too long
 * r.write("login user pass\n");
 * r.close();
 * ```
 * @module
 */
import type * as net from "node:net";

export interface LineReaderOptions {
  /** How long `next()` waits for a line; then the socket is destroyed and `next()` rejects. */
  readonly timeoutMs: number;
  /** Who answers, for messages: "timed out waiting for PEER", "connection closed by PEER". */
  readonly peer: string;
  /** What ends a line: `"\n"` (a CR before it is dropped; the default), or only `"\r\n"`. */
  readonly ending?: "\n" | "\r\n";
  /** The longest line (default 65536 bytes): a longer one ends the connection. */
  readonly maxLine?: number;
}

export class LineReader {
  readonly #o: LineReaderOptions;
  #sock: net.Socket | undefined;
  #buf = "";
  #lines: string[] = [];
  #waiter: ((line: string | Error) => void) | undefined;
  #error: Error | undefined;
  readonly #onData = (d: Buffer | string): void => {
    this.#buf += typeof d === "string" ? d : d.toString("latin1");
    const ending = this.#o.ending ?? "\n";
    let i: number;
    while ((i = this.#buf.indexOf(ending)) >= 0) {
      let line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + ending.length);
      if (ending === "\n" && line.endsWith("\r")) line = line.slice(0, -1);
      if (this.#waiter) this.#waiter(line);
      else this.#lines.push(line);
    }
    if (this.#buf.length > (this.#o.maxLine ?? 65536)) this.#sock?.destroy(new Error("answer line too long"));
  };
  readonly #onError = (e: Error): void => this.#fail(e);
  readonly #onClose = (): void => this.#fail(new Error(`connection closed by ${this.#o.peer}`));

  /** Reads from `sock` when given, else from the socket `attach` gets. */
  constructor(opts: LineReaderOptions, sock?: net.Socket) {
    this.#o = opts;
    if (sock) this.attach(sock);
  }

  #fail(e: Error): void {
    this.#error ??= e;
    this.#waiter?.(this.#error);
  }

  attach(sock: net.Socket): void {
    this.#sock = sock;
    sock.on("data", this.#onData);
    sock.on("error", this.#onError);
    sock.on("close", this.#onClose);
  }

  /** Hands the socket over for a TLS upgrade; throws when the peer already sent more (an injection). */
  detach(): net.Socket {
    const sock = this.#sock!;
    sock.off("data", this.#onData);
    sock.off("error", this.#onError);
    sock.off("close", this.#onClose);
    if (this.#buf !== "" || this.#lines.length > 0) throw new Error(`${this.#o.peer} sent data after its STARTTLS answer`);
    return sock;
  }

  /** The next line, without its ending. */
  next(): Promise<string> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#sock?.destroy(new Error(`timed out waiting for ${this.#o.peer}`)), this.#o.timeoutMs);
      this.#waiter = (l) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        if (l instanceof Error) reject(l);
        else resolve(l);
      };
    });
  }

  write(data: string | Uint8Array): void {
    this.#sock?.write(data);
  }

  /** Ends the connection once what was written has gone, and drops it if that takes long. */
  close(): void {
    const sock = this.#sock;
    sock?.end();
    setTimeout(() => sock?.destroy(), 1000).unref?.();
  }
}
