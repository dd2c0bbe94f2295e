/**
 * The milter protocol (Sendmail's libmilter, version 6) on the wire, for a plugin that talks to a
 * milter: the connection, its packets, and the option negotiation. What the packets mean at each
 * SMTP stage is the plugin's (plugins/milter.ts).
 *
 * ```ts
 * const link = await MilterLink.open({ path: "/run/milter.sock" }, 5000, this.signal);
 * const options = await link.negotiate({ version: 6, actions: 0x1ff, protocol: 0x1ff7ff });
 * link.limits = { signal: this.signal, waitMs: 10_000 };
 * await link.send("C", Buffer.from("client\0" + "4" + "\0\0"));
 * const answer = await link.read(); // { cmd: "c", data } for continue
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import { abortReason, type BackendTarget } from "./backend.ts";

/** The longest packet a milter may send (1 MiB). */
const MAX_PACKET = 1024 * 1024;

/** One packet: its command letter and its data. */
export interface MilterPacket {
  readonly cmd: string;
  readonly data: Buffer;
}

/** What the negotiation settled. */
export interface MilterOptions {
  readonly version: number;
  /** The SMFIF_* actions the milter may take. */
  readonly actions: number;
  /** The SMFIP_* steps it turned off or wants no reply for. */
  readonly protocol: number;
  /** Macros the milter asked for, by stage (SMFIM_*), when it used SETSYMLIST. */
  readonly macros: Map<number, string[]>;
}

/** A connection to a milter: packets of `<u32 length><command><data>`, each wait within `limits`. */
export class MilterLink {
  readonly #s: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #error: Error | undefined;
  #closed = false;
  /** The limits of the exchange in progress: the call's signal and how long one wait may last. */
  limits: { signal: AbortSignal; waitMs: number } = { signal: new AbortController().signal, waitMs: 30_000 };

  private constructor(s: net.Socket) {
    this.#s = s;
    s.on("data", (d: Buffer) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      this.#notify();
    });
    s.on("error", (e) => {
      this.#error ??= e;
      this.#notify();
    });
    s.on("close", () => {
      this.#closed = true;
      this.#notify();
    });
  }

  /** Connects within `ms`, or until `signal` aborts (which, once connected, no longer applies: see `limits`). */
  static open(t: BackendTarget, ms: number, signal: AbortSignal): Promise<MilterLink> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Error(`gave up connecting: ${abortReason(signal)}`));
      const s = "path" in t ? net.connect(t.path) : net.connect(t.port, t.host);
      const fail = (e: Error) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        s.destroy();
        reject(e);
      };
      const onAbort = () => fail(new Error(`gave up connecting: ${abortReason(signal)}`));
      const timer = setTimeout(() => fail(new Error(`no connection within ${ms} ms`)), ms);
      signal.addEventListener("abort", onAbort, { once: true });
      s.once("error", fail);
      s.once("connect", () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        s.off("error", fail);
        resolve(new MilterLink(s));
      });
    });
  }

  get alive(): boolean {
    return !this.#closed && !this.#error && !this.#s.destroyed;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Sends one packet; waits (within `limits`) while the milter does not read. */
  async send(cmd: string, data: Uint8Array = new Uint8Array(0)): Promise<void> {
    if (!this.alive) throw this.#error ?? new Error("the milter closed the connection");
    const head = Buffer.alloc(5);
    head.writeUInt32BE(data.length + 1, 0);
    head.write(cmd, 4, "latin1");
    if (this.#s.write(Buffer.concat([head, data]))) return;
    // The milter is not reading: wait for room, within the same limits as for an answer.
    const until = Date.now() + this.limits.waitMs;
    let drained = false;
    const ok = () => (drained = true, this.#notify());
    this.#s.once("drain", ok);
    try {
      while (!drained) {
        if (!this.alive) throw this.#error ?? new Error("the milter closed the connection");
        await this.#pause(until, "the milter does not read what we send");
      }
    } finally {
      this.#s.off("drain", ok);
    }
  }

  /**
   * The next packet, waiting at most `limits.waitMs` for it (each call has its own window, so
   * progress packets keep a stage alive) and never past `limits.signal`. Throws when the
   * connection ends, the packet is malformed, or the time is up.
   */
  async read(): Promise<MilterPacket> {
    const until = Date.now() + this.limits.waitMs;
    for (;;) {
      if (this.#buf.length >= 4) {
        const len = this.#buf.readUInt32BE(0);
        if (len < 1 || len > MAX_PACKET) {
          this.close(false);
          throw new Error(`bad packet length ${len}`);
        }
        if (this.#buf.length >= 4 + len) {
          const cmd = String.fromCharCode(this.#buf[4]!);
          const data = this.#buf.subarray(5, 4 + len);
          this.#buf = this.#buf.subarray(4 + len);
          return { cmd, data };
        }
      }
      if (this.#error) throw this.#error;
      if (this.#closed) throw new Error("the milter closed the connection");
      await this.#pause(until, "no answer within the time limit");
    }
  }

  /** Waits for the socket to say something, until `until` or the signal; then closes and throws `why`. */
  async #pause(until: number, why: string): Promise<void> {
    const { signal } = this.limits;
    const left = until - Date.now();
    if (signal.aborted || left <= 0) {
      this.close(false);
      throw new Error(signal.aborted ? abortReason(signal) : why);
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, left);
      this.#wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * The option negotiation (SMFIC_OPTNEG): offers `version`, `actions` (SMFIF_*) and `protocol`
   * (SMFIP_*); throws when the milter answers otherwise or wants what was not offered.
   */
  async negotiate(offer: { readonly version: number; readonly actions: number; readonly protocol: number }): Promise<MilterOptions> {
    const o = Buffer.alloc(12);
    o.writeUInt32BE(offer.version, 0);
    o.writeUInt32BE(offer.actions, 4);
    o.writeUInt32BE(offer.protocol, 8);
    await this.send("O", o);
    const r = await this.read();
    if (r.cmd !== "O" || r.data.length < 12) throw new Error(`bad negotiation answer "${r.cmd}" (${r.data.length} bytes)`);
    const n: MilterOptions = {
      version: r.data.readUInt32BE(0),
      actions: r.data.readUInt32BE(4),
      protocol: r.data.readUInt32BE(8),
      macros: new Map(),
    };
    if (n.version < 2) throw new Error(`milter protocol version ${n.version} is too old`);
    if ((n.actions & ~offer.actions) !== 0) throw new Error(`the milter wants actions we do not offer (0x${n.actions.toString(16)})`);
    if ((n.protocol & ~offer.protocol & 0xfffffff) !== 0) {
      throw new Error(`the milter wants protocol steps we do not offer (0x${n.protocol.toString(16)})`);
    }
    for (let at = 12; at + 4 < r.data.length;) {
      const where = r.data.readUInt32BE(at);
      const end = r.data.indexOf(0, at + 4);
      if (end < 0) break;
      n.macros.set(where, r.data.subarray(at + 4, end).toString("latin1").split(/\s+/).filter(Boolean));
      at = end + 1;
    }
    return n;
  }

  /** Ends the connection: politely (SMFIC_QUIT) or at once. */
  close(polite: boolean): void {
    if (polite && this.alive) this.#s.end(Buffer.from([0, 0, 0, 1, 0x51]));
    else this.#s.destroy();
    this.#closed = true;
  }
}
