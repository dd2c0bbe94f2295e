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
 *
 * STARTTLS (RFC 3207): write `STARTTLS`, read the 220, then `await c.startTls({ servername })` and
 * greet again; `c.tls` tells whether the session is encrypted and the certificate verified.
 * CHUNKING (RFC 3030): `await c.sendBdat(txn.message_stream(), { pipelining })` sends BDAT chunks
 * and returns the reply to the last one.
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";

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

/** How `startTls` sets up TLS on the connection. */
export interface StartTlsOptions {
  /**
   * The server's name: sent as SNI (unless it is an IP address) and matched against the
   * certificate. Default: the host connected to.
   */
  readonly servername?: string;
  /** PEM CA certificates to trust instead of the system's. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * Fail (and close the connection) when the certificate does not verify: a chain to a trusted
   * CA and a name that matches `servername`. @default false (opportunistic TLS: any certificate)
   */
  readonly rejectUnauthorized?: boolean;
}

/** The TLS session of a connection after `startTls`. */
export interface ClientTlsInfo {
  /** `TLSv1.3`, `TLSv1.2`. */
  readonly protocol: string;
  readonly cipher: string;
  /** The certificate chains to a trusted CA and names the server. */
  readonly verified: boolean;
  /** Why the certificate did not verify. */
  readonly verifyError?: string;
  /** The certificate's subject CN, when it has one. */
  readonly peerName?: string;
}

/** How `sendBdat` sends a message. */
export interface BdatOptions {
  /** Bytes per chunk. @default 65536 */
  readonly chunkSize?: number;
  /** Send the next chunks before the replies to the previous ones come (the server offers PIPELINING). @default false */
  readonly pipelining?: boolean;
  /**
   * BODY=BINARYMIME: only the header block is made canonical; the body after its blank line goes
   * out byte for byte. Otherwise the whole message is: CRLF line ends, a stray CR becomes a
   * space, a final line end added when missing. @default false
   */
  readonly binaryBody?: boolean;
}

/** Chunks in flight at once when pipelining BDAT: enough to keep the line busy, few enough to stop soon after a refusal. */
const BDAT_WINDOW = 4;

export class SmtpClient {
  #sock: net.Socket;
  #buf = "";
  #replies: ClientReply[] = [];
  #lines: string[] = [];
  #waiters: Array<(r: ClientReply | Error) => void> = [];
  #error: Error | undefined;
  readonly #lmtp: boolean;
  /** The host connected to (the default TLS server name); undefined for a unix socket. */
  readonly #host: string | undefined;
  #tls: ClientTlsInfo | undefined;
  /** Time limit for connecting and for each reply, ms. */
  timeoutMs: number;

  private constructor(sock: net.Socket, timeoutMs: number, lmtp: boolean, host?: string) {
    this.#sock = sock;
    this.timeoutMs = timeoutMs;
    this.#lmtp = lmtp;
    this.#host = host;
    this.#attach(sock);
  }

  readonly #onDataListener = (d: string): void => this.#onData(d);
  readonly #onError = (e: Error): void => {
    this.#error ??= e;
    for (const w of this.#waiters.splice(0)) w(this.#error);
  };
  readonly #onClose = (): void => this.#onError(new Error("connection closed by the server"));

  #attach(sock: net.Socket): void {
    sock.setEncoding("latin1");
    sock.on("data", this.#onDataListener);
    sock.on("error", this.#onError);
    sock.on("close", this.#onClose);
  }

  #detach(sock: net.Socket): void {
    sock.off("data", this.#onDataListener);
    sock.off("error", this.#onError);
    sock.off("close", this.#onClose);
    // The TLS layer owns the socket now; an error on it must not go unhandled.
    sock.on("error", () => undefined);
  }

  /** The TLS session once `startTls` succeeded; undefined while the connection is in clear. */
  get tls(): ClientTlsInfo | undefined {
    return this.#tls;
  }

  /** Connects over TCP (`host`, `port`) or a unix socket (`path`). */
  static connect(target: ClientTarget, opts: ClientOptions = {}): Promise<SmtpClient> {
    const timeoutMs = opts.timeoutMs ?? 60000;
    const where = "path" in target ? target.path : `${target.host}:${target.port}`;
    return new Promise((resolve, reject) => {
      const sock = "path" in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
      let client: SmtpClient | undefined;
      // After STARTTLS the client's socket is the TLS one: destroy whichever is current.
      const abort = (): void => {
        (client ? client.#sock : sock).destroy(new Error(`aborted: ${String(opts.signal?.reason)}`));
      };
      opts.signal?.addEventListener("abort", abort, { once: true });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${where} timed out`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        client = new SmtpClient(sock, timeoutMs, opts.lmtp ?? false, "path" in target ? undefined : target.host);
        resolve(client);
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

  /**
   * Sends MAIL and the RCPTs (`commands`, each ending in CRLF), at once when the server offers
   * PIPELINING, else one by one, stopping when MAIL is refused; a reply for each command sent.
   */
  async sendEnvelope(commands: readonly string[], pipelining: boolean): Promise<ClientReply[]> {
    const replies: ClientReply[] = [];
    if (pipelining) {
      await this.write(commands.join(""));
      for (let i = 0; i < commands.length; i++) replies.push(await this.read());
      return replies;
    }
    for (const c of commands) {
      await this.write(c);
      replies.push(await this.read());
      if (replies[0]!.code !== 250) break;
    }
    return replies;
  }

  /** Sends a message (LF or CRLF line ends) as DATA content, ending with the final dot. */
  async sendData(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const stuff = new DotStuffer();
    for await (const c of chunks) await this.write(stuff.push(c));
    await this.write(stuff.end());
  }

  /**
   * Starts TLS on the connection (RFC 3207): call it once the server answered `STARTTLS` with
   * 220, then greet again, as the capabilities from before are void. Throws when the server
   * sent anything after its 220 (a reply injected in clear), when the handshake fails or takes
   * longer than `timeoutMs`, and, with `rejectUnauthorized`, when the certificate does not
   * verify; the connection is then unusable.
   */
  async startTls(opts: StartTlsOptions = {}): Promise<ClientTlsInfo> {
    if (this.#error) throw this.#error;
    if (this.#tls) throw new Error("TLS is already active");
    if (this.#buf !== "" || this.#replies.length > 0 || this.#lines.length > 0) {
      this.#sock.destroy();
      throw new Error("the server sent data after its STARTTLS reply");
    }
    const plain = this.#sock;
    this.#detach(plain);
    const name = opts.servername ?? this.#host;
    const sock = tls.connect({
      socket: plain,
      // RFC 6066 3: no SNI for an address literal.
      ...(name !== undefined && net.isIP(name) === 0 ? { servername: name } : {}),
      ...(opts.ca !== undefined ? { ca: opts.ca as string | Buffer | Array<string | Buffer> } : {}),
      // Verification is decided below, after the handshake, so an opportunistic session can go on.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    });
    this.#sock = sock;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error("TLS handshake timed out"));
        }, this.timeoutMs);
        sock.once("secureConnect", () => {
          clearTimeout(timer);
          resolve();
        });
        sock.once("error", (e: Error) => {
          clearTimeout(timer);
          reject(new Error(`TLS handshake failed: ${e.message}`));
        });
        sock.once("close", () => {
          clearTimeout(timer);
          reject(new Error("TLS handshake failed: connection closed"));
        });
      });
    } catch (e) {
      this.#error ??= e as Error;
      sock.destroy();
      throw e;
    }
    const cert = sock.getPeerCertificate();
    let verifyError: string | undefined;
    if (!sock.authorized) verifyError = String(sock.authorizationError ?? "certificate not verified");
    else if (name === undefined) verifyError = "no server name to check the certificate against";
    else verifyError = tls.checkServerIdentity(name, cert)?.message;
    const cn = cert?.subject?.CN;
    const info: ClientTlsInfo = {
      protocol: sock.getProtocol() ?? "",
      cipher: sock.getCipher()?.name ?? "",
      verified: verifyError === undefined,
      ...(verifyError !== undefined ? { verifyError } : {}),
      ...(typeof cn === "string" ? { peerName: cn } : {}),
    };
    if (verifyError !== undefined && opts.rejectUnauthorized) {
      this.#error ??= new Error(`certificate not verified: ${verifyError}`);
      sock.destroy();
      throw this.#error;
    }
    this.#attach(sock);
    this.#tls = info;
    return info;
  }

  /**
   * Sends a message with BDAT (RFC 3030): chunks of `chunkSize` bytes, the last one `BDAT n
   * LAST` (`BDAT 0 LAST` when the message ends on a chunk boundary). Returns the reply to the
   * last chunk, or the first refusal of an earlier chunk (after which no more chunks are sent;
   * the replies to those already sent are read).
   */
  async sendBdat(chunks: AsyncIterable<Uint8Array>, opts: BdatOptions = {}): Promise<ClientReply> {
    const size = opts.chunkSize ?? 65536;
    if (!Number.isInteger(size) || size < 1) throw new Error(`bad BDAT chunk size ${size}`);
    const window = opts.pipelining ? BDAT_WINDOW : 1;
    const encoder = new CrlfEncoder({ binaryBody: opts.binaryBody ?? false });
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let inFlight = 0;
    let refusal: ClientReply | undefined;
    let last: ClientReply | undefined;
    const settle = async (keep: number): Promise<void> => {
      while (inFlight > keep) {
        const r = await this.read();
        inFlight--;
        last = r;
        if (r.code !== 250 && !refusal) refusal = r;
      }
    };
    const send = async (data: Buffer, isLast: boolean): Promise<void> => {
      await this.write(Buffer.concat([Buffer.from(`BDAT ${data.length}${isLast ? " LAST" : ""}\r\n`), data]));
      inFlight++;
      await settle(isLast ? 0 : window - 1);
    };
    for await (const piece of chunks) {
      const bytes = encoder.push(piece);
      if (bytes.length === 0) continue;
      // A binary body passes through as the caller's own buffer, which it may reuse: copy it.
      pending.push(bytes === piece ? Buffer.from(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      pendingBytes += bytes.length;
      if (pendingBytes < size) continue;
      const all = Buffer.concat(pending);
      let offset = 0;
      while (all.length - offset >= size && !refusal) {
        await send(all.subarray(offset, offset + size), false);
        offset += size;
      }
      pending = [all.subarray(offset)];
      pendingBytes = all.length - offset;
      if (refusal) break;
    }
    if (refusal) {
      await settle(0);
      return refusal;
    }
    await send(Buffer.concat([...pending, encoder.end()]), true);
    return refusal ?? last!;
  }

  close(): void {
    this.#sock.end();
    setTimeout(() => this.#sock.destroy(), 1000).unref?.();
  }
}

/**
 * Canonical SMTP content for BDAT (no dot-stuffing, no terminator): every line ends in CRLF, a
 * stray CR becomes a space, and `end()` adds a final line end when the content lacks one. With
 * `binaryBody` (BODY=BINARYMIME) only the header block is made canonical: after its blank line
 * the bytes pass as they are.
 */
export class CrlfEncoder {
  readonly #lines: LineEnds;

  constructor(opts: { readonly binaryBody?: boolean } = {}) {
    this.#lines = new LineEnds(false, opts.binaryBody ?? false);
  }

  push(chunk: Uint8Array): Uint8Array {
    return this.#lines.push(chunk);
  }

  /** What ends the content: a line end if it lacked one (nothing after a binary body). */
  end(): Uint8Array {
    const l = this.#lines;
    if (l.raw) return new Uint8Array(0);
    return Buffer.from(l.takeCr() ? " \r\n" : l.atLineStart ? "" : "\r\n");
  }
}

/**
 * `chunks` with CRLF line ends, as the wire and signatures want them, from the LF line ends the
 * spool keeps (`txn.message_stream()`, the file `txn.body_filename()` names): CrlfEncoder's
 * `push` on each chunk.
 */
export async function* withCrlf(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const encoder = new CrlfEncoder();
  for await (const c of chunks) yield encoder.push(c);
}

/**
 * Canonical SMTP content: every line ends in CRLF, a stray CR becomes a space (it could start a
 * smuggling sequence at the next hop), and a leading dot is doubled.
 */
export class DotStuffer {
  readonly #lines = new LineEnds(true, false);

  push(chunk: Uint8Array): Uint8Array {
    return this.#lines.push(chunk);
  }

  /** The end of data: a line end if the content lacked one, then `.` CRLF. */
  end(): Uint8Array {
    const l = this.#lines;
    return Buffer.from(l.takeCr() ? " \r\n.\r\n" : l.atLineStart ? ".\r\n" : "\r\n.\r\n");
  }
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const DOT = 46;

/**
 * What CrlfEncoder and DotStuffer share, a chunk at a time: CR LF and LF become CRLF, any other
 * CR a space, whatever the chunks' boundaries; with `dots` a dot that starts a line is doubled,
 * with `binaryBody` the bytes after the first blank line pass as they are.
 */
class LineEnds {
  atLineStart = true;
  /** After a blank line of a binary body: nothing more is changed. */
  raw = false;
  /** A CR ended the previous chunk: a line end if the next one starts with LF. */
  #cr = false;
  readonly #dots: boolean;
  readonly #binaryBody: boolean;

  constructor(dots: boolean, binaryBody: boolean) {
    this.#dots = dots;
    this.#binaryBody = binaryBody;
  }

  /** Whether a CR was left at the very end (the content's last byte): it ends as a space. */
  takeCr(): boolean {
    const had = this.#cr;
    this.#cr = false;
    return had;
  }

  push(chunk: Uint8Array): Uint8Array {
    if (this.raw || chunk.length === 0) return chunk;
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = b.length;
    const out = Buffer.allocUnsafe(n * 2 + 2);
    let o = 0;
    let i = 0;
    if (this.takeCr() && b[0] !== LF) {
      out[o++] = SPACE;
      this.atLineStart = false;
    }
    // Where the next LF and CR are: each looked for again only once passed, since searching for
    // both from every line start would cost many short lines and one far CR their size squared.
    let lf = -1;
    let cr = -1;
    while (i < n) {
      if (lf < i) lf = indexOr(b, LF, i, n);
      if (cr < i) cr = indexOr(b, CR, i, n);
      const stop = Math.min(lf, cr);
      if (stop > i) {
        // The bytes up to it are copied as they are, in one go.
        if (this.#dots && this.atLineStart && b[i] === DOT) out[o++] = DOT;
        o += b.copy(out, o, i, stop);
        this.atLineStart = false;
        i = stop;
        if (i === n) break;
      }
      if (b[i] === CR) {
        if (i + 1 === n) this.#cr = true; // the next chunk says what it is
        else if (b[i + 1] !== LF) {
          out[o++] = SPACE;
          this.atLineStart = false;
        }
        i++;
        continue;
      }
      const blank = this.atLineStart;
      out[o++] = CR;
      out[o++] = LF;
      this.atLineStart = true;
      i++;
      if (blank && this.#binaryBody) {
        this.raw = true;
        return Buffer.concat([out.subarray(0, o), b.subarray(i)]);
      }
    }
    return out.subarray(0, o);
  }
}

function indexOr(b: Buffer, byte: number, from: number, none: number): number {
  const at = b.indexOf(byte, from);
  return at < 0 ? none : at;
}
