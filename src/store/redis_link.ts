/**
 * The store's hold on Redis: one connection, a time limit on everything, and a reconnect loop.
 *
 * - Up: each operation gets `timeoutMs`. A connection error or a timeout (a Redis that accepts
 *   and never answers) marks the link down and drops the connection; a reply error (a wrong
 *   type) is only that operation's failure.
 * - Down: operations fail at once (no connection waits on a dead store) while a loop reconnects
 *   with exponential backoff (100 ms doubling to 5 s, with jitter) and a PING.
 * - Starting: operations wait for the client library to load, then for the first connection
 *   and its PING, at most twice `timeoutMs`.
 *
 * It logs the changes, not every failure: a warning when the link goes down, one when it is back
 * (at the same level, so whoever sees the first sees the second), and one each minute while it
 * stays down.
 * @module
 */
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import { LOGDEBUG, LOGWARN } from "../api/codes.ts";
import { type Backend, createBackend, loadClient, ReplyError } from "./redis_backend.ts";
import type { RedisSpec } from "./redis_url.ts";

export type Log = (level: number, message: string) => void;

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;
const REMIND_MS = 60_000;

/** An operation in flight: when it is given up, and how. */
interface Pending {
  readonly deadline: number;
  readonly fail: (e: unknown) => void;
}

/** Why an operation failed without a reply from Redis: the store is unavailable. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

export class RedisLink {
  readonly #spec: RedisSpec;
  readonly #log: Log;
  #backend: Backend | undefined;
  #state: "starting" | "up" | "down" | "closed" = "starting";
  #reason = "";
  #downSince = 0;
  #reminded = 0;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  readonly #pending = new Set<Pending>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #started: Promise<void>;
  readonly #loaded: Promise<unknown>;
  #settleStart: () => void = () => undefined;

  constructor(spec: RedisSpec, log: Log) {
    this.#spec = spec;
    this.#log = log;
    this.#started = new Promise((r) => (this.#settleStart = r));
    this.#loaded = loadClient().catch(() => undefined);
    void this.#connect();
  }

  get up(): boolean {
    return this.#state === "up";
  }

  /** Runs `fn` on the connection within the time limit. */
  run<T>(fn: (b: Backend) => Promise<T>): Promise<T> {
    if (this.#state === "starting") return this.#afterStart(fn);
    const b = this.#backend;
    if (this.#state !== "up" || !b) {
      return Promise.reject(new StoreUnavailableError(`${this.#spec.location} is unreachable${this.#reason ? ` (${this.#reason})` : ""}`));
    }
    // No timer per operation: the sweeper gives up on those past their deadline.
    return new Promise<T>((resolve, reject) => {
      const op: Pending = { deadline: Date.now() + this.#spec.timeoutMs, fail: (e) => settle(e) };
      const settle = (e: unknown): void => {
        if (!this.#pending.delete(op)) return; // already settled or swept
        if (isReplyError(e)) return reject(e);
        this.#lost(b, e);
        reject(new StoreUnavailableError(`${this.#spec.location}: ${message(e)}`));
      };
      this.#pending.add(op);
      this.#sweep();
      fn(b).then((v) => this.#pending.delete(op) && resolve(v), settle);
    });
  }

  async #afterStart<T>(fn: (b: Backend) => Promise<T>): Promise<T> {
    await this.#loaded; // local code, not the network: the time limits start after it
    await limit(this.#started, 2 * this.#spec.timeoutMs, "no connection yet").catch(() => undefined);
    return this.#state === "starting"
      ? Promise.reject(new StoreUnavailableError(`${this.#spec.location}: no connection yet`))
      : this.run(fn);
  }

  /** Checks the deadlines of the operations in flight, every tenth of the time limit while there are any. */
  #sweep(): void {
    if (this.#sweeper) return;
    const every = Math.max(10, Math.min(100, this.#spec.timeoutMs / 10));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const op of this.#pending) {
        if (op.deadline <= now) op.fail(new StoreUnavailableError(`no answer within ${this.#spec.timeoutMs} ms`));
      }
      if (this.#pending.size === 0 && this.#sweeper) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, every);
    this.#sweeper.unref();
  }

  close(): void {
    this.#state = "closed";
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#backend?.destroy();
    this.#backend = undefined;
    this.#settleStart();
  }

  /** A method, so TypeScript does not narrow the state across an await. */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #lost(b: Backend, e: unknown): void {
    if (b !== this.#backend || this.#state !== "up") return; // an old connection's late error
    this.#backend = undefined;
    b.destroy();
    this.#down(message(e));
    this.#log(LOGWARN, `${this.#spec.location} lost: ${this.#reason}; failing fast and reconnecting`);
    this.#schedule();
  }

  #down(reason: string): void {
    this.#reason = reason;
    if (this.#state !== "down") [this.#downSince, this.#reminded] = [Date.now(), Date.now()];
    this.#state = "down";
    this.#settleStart();
  }

  async #connect(): Promise<void> {
    this.#retry = undefined;
    if (this.#state === "closed") return;
    let b: Backend | undefined;
    try {
      b = await createBackend(this.#spec, (e) => b && this.#lost(b, e));
      await limit(b.connect(), this.#spec.timeoutMs, `no connection within ${this.#spec.timeoutMs} ms`);
      await limit(b.ping(), this.#spec.timeoutMs, `no PING answer within ${this.#spec.timeoutMs} ms`);
    } catch (e) {
      b?.destroy();
      if (this.#isClosed()) return;
      const first = this.#state === "starting";
      this.#down(message(e));
      if (first) this.#log(LOGWARN, `${this.#spec.location} unreachable: ${this.#reason}; failing fast and reconnecting`);
      else if (Date.now() - this.#reminded >= REMIND_MS) {
        this.#reminded = Date.now();
        this.#log(LOGWARN, `${this.#spec.location} still unreachable after ${secs(Date.now() - this.#downSince)}: ${this.#reason}`);
      } else this.#log(LOGDEBUG, `${this.#spec.location}: reconnect failed: ${this.#reason}`);
      this.#schedule();
      return;
    }
    if (this.#isClosed()) return b.destroy(); // closed while connecting
    const wasDown = this.#state === "down";
    [this.#backend, this.#state, this.#attempt, this.#reason] = [b, "up", 0, ""];
    this.#settleStart();
    if (wasDown) this.#log(LOGWARN, `${this.#spec.location} reachable again after ${secs(Date.now() - this.#downSince)}`);
  }

  #schedule(): void {
    if (this.#retry || this.#state === "closed") return;
    const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.#attempt++);
    this.#retry = setTimeout(() => void this.#connect(), ceiling / 2 + Math.random() * ceiling / 2);
    this.#retry.unref();
  }
}

/** `p`, or a rejection after `ms`; the timer does not keep the process alive. */
function limit<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new StoreUnavailableError(why)), ms);
    t.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

/** Redis answered with an error about this command; errors that say the server cannot serve count as an outage. */
function isReplyError(e: unknown): boolean {
  return e instanceof ReplyError && !/^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY)/.test(e.message);
}

function message(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return message(e.errors[0]);
  return e instanceof Error ? e.message || e.name : String(e);
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
