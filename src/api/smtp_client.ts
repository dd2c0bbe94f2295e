/**
 * A small SMTP and LMTP client for queue plugins: replies are read as whole (multi-line)
 * replies, commands may be pipelined, and the message is sent with CRLF line ends and
 * dot-stuffing.
 *
 * ```ts
 * const c = await SmtpClient.connect({ host: "127.0.0.1", port: 25 });
 * if ((await c.read()).code !== 220) throw new Error("no greeting");
 * const caps = await c.hello(this.qp.me);             // EHLO (LHLO for LMTP), HELO as fallback
 * await c.write(`MAIL FROM:${txn.sender()}\r\n`);
 * ...
 * await c.sendData(txn.message_stream());             // then read() the reply (one per recipient for LMTP)
 * ```
 * @module
 */
import * as net from "node:net";

export interface ClientReply {
  readonly code: number;
  readonly lines: readonly string[];
}

export type ClientTarget = { readonly host: string; readonly port: number } | { readonly path: string };

export interface ClientOptions {
  /** Time limit for connecting and for each reply, ms. @default 60000 */
  readonly timeoutMs?: number;
  /** Speak LMTP (RFC 2033): LHLO, and one reply per accepted recipient after the data. @default false */
  readonly lmtp?: boolean;
  /** Closes the connection when aborted (pass the hook's `this.signal`). */
  readonly signal?: AbortSignal;
}

export class SmtpClient {
  readonly #sock: net.Socket;
  #buf = "";
  #replies: ClientReply[] = [];
  #lines: string[] = [];
  #waiters: Array<(r: ClientReply | Error) => void> = [];
  #error: Error | undefined;
  readonly #lmtp: boolean;
  /** Time limit for connecting and for each reply, ms. */
  timeoutMs: number;

  private constructor(sock: net.Socket, timeoutMs: number, lmtp: boolean) {
    this.#sock = sock;
    this.timeoutMs = timeoutMs;
    this.#lmtp = lmtp;
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => this.#onData(d));
    const fail = (e: Error): void => {
      this.#error ??= e;
      for (const w of this.#waiters.splice(0)) w(this.#error);
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("connection closed by the server")));
  }

  /** Connects over TCP (`host`, `port`) or a unix socket (`path`). */
  static connect(target: ClientTarget, opts: ClientOptions = {}): Promise<SmtpClient> {
    const timeoutMs = opts.timeoutMs ?? 60000;
    const where = "path" in target ? target.path : `${target.host}:${target.port}`;
    return new Promise((resolve, reject) => {
      const sock = "path" in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
      opts.signal?.addEventListener("abort", () => sock.destroy(new Error(`aborted: ${String(opts.signal?.reason)}`)), { once: true });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${where} timed out`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        resolve(new SmtpClient(sock, timeoutMs, opts.lmtp ?? false));
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  #onData(d: string): void {
    this.#buf += d;
    if (this.#buf.length > 1 << 20) {
      this.#sock.destroy(new Error("reply too long"));
      return;
    }
    let i: number;
    while ((i = this.#buf.indexOf("\n")) >= 0) {
      const line = this.#buf.slice(0, i).replace(/\r$/, "");
      this.#buf = this.#buf.slice(i + 1);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) continue;
      this.#lines.push(m[3]!);
      if (m[2] !== "-") {
        const reply = { code: Number(m[1]), lines: this.#lines };
        this.#lines = [];
        const w = this.#waiters.shift();
        if (w) w(reply);
        else this.#replies.push(reply);
      }
    }
  }

  /** The next reply from the server. */
  read(): Promise<ClientReply> {
    const ready = this.#replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#sock.destroy();
        reject(new Error("timed out waiting for a reply"));
      }, this.timeoutMs);
      this.#waiters.push((r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
    });
  }

  /**
   * Greets the server (EHLO, or LHLO for LMTP; HELO when an SMTP server refuses EHLO) and
   * returns its extension keywords, upper-cased. Throws when the server refuses the greeting.
   */
  async hello(name: string): Promise<Set<string>> {
    await this.write(`${this.#lmtp ? "LHLO" : "EHLO"} ${name}\r\n`);
    let r = await this.read();
    if (r.code >= 500 && !this.#lmtp) {
      await this.write(`HELO ${name}\r\n`);
      r = await this.read();
    }
    if (r.code !== 250) throw new Error(`greeting refused: ${r.code} ${r.lines.join(" ")}`);
    return new Set(r.lines.slice(1).map((l) => l.split(" ")[0]!.toUpperCase()));
  }

  /** Writes text, waiting for the socket to drain when its buffer is full. */
  async write(data: string | Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    if (!this.#sock.write(data)) await new Promise<void>((r) => this.#sock.once("drain", () => r()));
  }

  /** Sends a message (LF or CRLF line ends) as DATA content, ending with the final dot. */
  async sendData(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const stuff = new DotStuffer();
    for await (const c of chunks) await this.write(stuff.push(c));
    await this.write(stuff.end());
  }

  close(): void {
    this.#sock.end();
    setTimeout(() => this.#sock.destroy(), 1000).unref?.();
  }
}

/**
 * Canonical SMTP content: every line ends in CRLF, a stray CR becomes a space (it could start a
 * smuggling sequence at the next hop), and a leading dot is doubled.
 */
export class DotStuffer {
  #atLineStart = true;

  push(chunk: Uint8Array): Uint8Array {
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 13) {
        if (chunk[i + 1] === 10) continue; // CRLF: the LF writes the line end
        out[o++] = 32;
        this.#atLineStart = false;
        continue;
      }
      if (c === 10) {
        out[o++] = 13;
        out[o++] = 10;
        this.#atLineStart = true;
        continue;
      }
      if (this.#atLineStart && c === 46) out[o++] = 46;
      out[o++] = c;
      this.#atLineStart = false;
    }
    return out.subarray(0, o);
  }

  /** The end of data: a line end if the content lacked one, then `.` CRLF. */
  end(): Uint8Array {
    return Buffer.from(this.#atLineStart ? ".\r\n" : "\r\n.\r\n");
  }
}
