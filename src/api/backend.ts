/**
 * For plugins that talk to a daemon (spamd, clamd, rspamd, a milter...): where it listens, how
 * long it may take, and a connection that ends with the plugin's call.
 *
 * ```ts
 * const ms = backendTimeLimitMs(this.timeLimitMs);           // in init: under the engine's limit
 * const s = await connectBackend({ host: "127.0.0.1", port: 783 }, 5000, AbortSignal.timeout(ms));
 * await writeAll(s, "PING SPAMC/1.5\r\n\r\n");
 * ```
 * @module
 */
import * as net from "node:net";

/** A unix socket path, or a TCP host and port. */
export type BackendTarget = { readonly path: string } | { readonly host: string; readonly port: number };

/** `path`, or `host:port`, for messages. */
export function describeBackend(t: BackendTarget): string {
  return "path" in t ? t.path : `${t.host}:${t.port}`;
}

/**
 * How long a backend may take: one second under the engine's limit for the plugin's calls
 * (`timeLimitMs` of the plugin's context; at least half of it), so the plugin answers with its
 * own failure policy before the engine gives up on it; 25 s when the engine sets no limit (0).
 */
export function backendTimeLimitMs(engineLimitMs: number): number {
  return engineLimitMs === 0 ? 25_000 : Math.max(engineLimitMs - 1000, engineLimitMs / 2);
}

/**
 * Why `signal` was aborted: the reason's message when it is one of ours (the engine's time limit
 * says which plugin and hook), else `fallback` (an `AbortSignal.timeout` that fired).
 */
export function abortReason(signal: AbortSignal, fallback = "no answer within the time limit"): string {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name !== "TimeoutError" && r.name !== "AbortError") return r.message;
  return fallback;
}

/**
 * Connects within `ms`. Once connected, the socket is destroyed with an error when `signal`
 * aborts; errors of later reads and writes are for the caller to see on them.
 */
export function connectBackend(t: BackendTarget, ms: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error(abortReason(signal)));
    const s = "path" in t ? net.connect(t.path) : net.connect(t.port, t.host);
    const abort = () => s.destroy(new Error(abortReason(signal)));
    const fail = (e: Error) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", abort);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`no connection within ${ms} ms`)), ms);
    s.once("error", fail);
    s.once("connect", () => {
      clearTimeout(timer);
      s.off("error", fail);
      s.on("error", () => undefined); // reads and writes report errors themselves
      signal.addEventListener("abort", abort, { once: true });
      s.once("close", () => signal.removeEventListener("abort", abort));
      resolve(s);
    });
  });
}

/** Writes `data`, waiting for the socket to drain when it must; rejects when it closes first. */
export async function writeAll(s: net.Socket, data: string | Uint8Array): Promise<void> {
  if (s.destroyed || s.writableEnded) throw new Error("connection closed");
  if (s.write(data)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => {
      s.off("drain", ok).off("close", closed);
      e ? reject(e) : resolve();
    };
    const ok = () => done();
    const closed = () => done(new Error("connection closed while sending"));
    s.once("drain", ok).once("close", closed);
  });
}

/** A `yes|no` argument (also `1|0`, `true|false`); `fallback` when absent; throws naming `plugin` and `key`. */
export function parseYesNo(plugin: string, key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (/^(yes|1|true)$/i.test(value)) return true;
  if (/^(no|0|false)$/i.test(value)) return false;
  throw new Error(`${plugin}: ${key} is yes or no`);
}
