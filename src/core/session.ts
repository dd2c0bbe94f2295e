/**
 * One SMTP session, independent of sockets: bytes come in through `feed`, replies go out through
 * a Transport. It owns framing, limits, timeouts and the connection-level state; the commands
 * live in `commands.ts`, `data.ts` and `auth.ts`, and plugins see the session through
 * `PluginSession` (`api`).
 * @module
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Address } from "../api/address.ts";
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, LOGERROR, LOGINFO, LOGWARN, OK } from "../api/codes.ts";
import type { HookArgs } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { Session as PublicSession } from "../api/session.ts";
import { VERSION } from "../api/version.ts";
import { isForbiddenCommand, isKnownVerb, isVerb, splitCommand } from "../smtp/command.ts";
import { InputBuffer } from "../smtp/input.ts";
import { formatReply, splitLines } from "../smtp/reply.ts";
import { type Clock, sleep, type Timer } from "./clock.ts";
import { COMMANDS } from "./commands.ts";
import { connectionControl, type Endpoints, SmtpConnection } from "./connection.ts";
import { SessionCall } from "./hook_context.ts";
import { type HookRun, NO_HOOKS, NO_HOOKS_DONE, type Outcome, runHooks, runHooksNow, type RunnerSession } from "./hook_runner.ts";
import type { Limits } from "./limits.ts";
import { PluginSession } from "./plugin_session.ts";
import type { Registry } from "./registry.ts";
import { REPLIES, type Reply, replyLines, statusPrefix } from "./replies.ts";
import type { ServerHost } from "./server_host.ts";
import { defaultSpoolDir, newId, sharedLimits } from "./session_setup.ts";
import type { SmtpSession } from "./smtp_session.ts";
import { SmtpTransaction, transactionControl } from "./transaction.ts";

/** Where replies go and how the connection is upgraded or closed; the runtime implements it on a socket. */
export interface Transport {
  write(data: string): void;
  /** Bytes written and not yet sent to the client. */
  backlog(): number;
  /** Resolves when the backlog has been sent (or the connection is gone). */
  drained(): Promise<void>;
  /** Closes at once, dropping what is unsent (a client that reads nothing). */
  abort(): void;
  /** Upgrades to TLS with `context` after the 220 was flushed; resolves with the cipher name. */
  startTls(context: unknown): Promise<string>;
  /** Flushes pending output and closes. */
  close(): void;
  /** Stops reading from the client until `resume` (back-pressure). */
  pause(): void;
  resume(): void;
}

export interface SessionOptions {
  readonly registry: Registry;
  readonly transport: Transport;
  readonly endpoints: Endpoints;
  readonly id?: string;
  /** Cipher name when the connection arrived over implicit TLS. */
  readonly tlsCipher?: string;
}

/** Input held before reading from the client pauses. */
const HIGH_WATER = 256 * 1024;
/** Output waiting for a client before its commands are no longer read. */
const OUT_HIGH = 64 * 1024;

/** A plain object (Perl's unblessed hash): not a list, a class's instance or a function. */
function isHash(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** `hook_<hook>`, the note key of a plugin's return code for a hook (made once per hook name). */
const RETURN_KEYS = new Map<string, string>();
function returnKey(hook: string): string {
  let key = RETURN_KEYS.get(hook);
  if (key === undefined) RETURN_KEYS.set(hook, key = `hook_${hook.replace(/\W/g, "_")}`);
  return key;
}

/** Why a wait for the client's input ended. */
export type Waited = "woken" | "timeout" | "eof";

const SETTLED: Promise<void> = Promise.resolve();

/** #look's answer: look again at once. */
const AGAIN = Symbol("again");
/** What one look for a line says (see #look). */
type Look = string | undefined | typeof AGAIN | Promise<unknown>;

export class Session implements SmtpSession, RunnerSession, HookRun {
  readonly registry: Registry;
  readonly host: ServerHost;
  readonly clock: Clock;
  #connection: SmtpConnection;
  readonly limits: Limits;
  readonly input = new InputBuffer();
  /** What plugins see as `this.qp`. */
  readonly api: PublicSession;
  readonly #transport: Transport;
  #txn: SmtpTransaction | undefined;
  /** Ends the current wait: true when woken (input, end, drain, close), false at its deadline. */
  #wake: ((woken: boolean) => void) | undefined;
  /** The current wait's deadline (epoch ms on the session's clock). */
  #deadline = Infinity;
  /**
   * One timer per session, not one per wait: armed for the earliest deadline still wanted and
   * left running while later waits have later deadlines (it re-arms itself when it fires early).
   */
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #eof = false;
  #closed = false;
  #disconnected = false;
  #paused = false;
  #out = "";
  #errors = 0;
  #lastCode = 0;
  /** Config names whose config hooks are running: a hook that reads config gets the files. */
  #inConfigHook: Set<string> | undefined;
  /** Set by SIGTERM handling: finish the current transaction, then say goodbye. */
  #draining = false;
  /** Replies carry enhanced status codes (RFC 2034): on after an EHLO, which advertises them. */
  enhancedCodes = false;
  transactions = 0;
  authAdvertised = false;
  authUser: string | undefined;
  authMechanism: string | undefined;
  commandCounter = 0;
  /** When the wait for the line being read began (see #look). */
  #lineBegun: number | undefined;
  /** The verb of the command whose handler runs (see #dispatch). */
  #verb: string | undefined;
  /** Called whenever the session blocks waiting for the client (the test harness uses it). */
  onIdle: (() => void) | undefined;
  #done: Promise<void> | undefined;
  #resolveDone: (() => void) | undefined;
  #ended = false;
  #gone: Promise<void> | undefined;
  #resolveGone: (() => void) | undefined;
  #isGone = false;
  /** Plugin calls waiting on a promise, told when the client goes (see `onGone`). */
  #goneWatchers: Set<() => void> | undefined;
  /** The server was under stress during this session: its reads keep the short timeout. */
  #stressed = false;

  constructor(opts: SessionOptions) {
    this.registry = opts.registry;
    this.host = opts.registry.host;
    this.clock = this.host.clock;
    this.#transport = opts.transport;
    this.#connection = new SmtpConnection(opts.endpoints, opts.id ?? newId(), opts.tlsCipher);
    this.limits = sharedLimits(this.host, (m) => this.log(LOGERROR, m));
    this.api = new PluginSession(this);
  }

  // The promises are made when first asked for: most sessions end without anyone asking.

  /** Resolves when the session has ended. */
  get done(): Promise<void> {
    return this.#done ??= this.#ended ? Promise.resolve() : new Promise((r) => (this.#resolveDone = r));
  }

  /** Resolves when the client has gone (closed its side, or the socket failed). */
  get gone(): Promise<void> {
    return this.#gone ??= this.#isGone ? Promise.resolve() : new Promise((r) => (this.#resolveGone = r));
  }

  /** The session runs its own hooks (HookRun): no object and closure for that per session. */
  get session(): this {
    return this;
  }

  // ---- input ----------------------------------------------------------------------------

  /** Bytes from the client. */
  feed(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.input.push(chunk);
    if (this.input.size > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#transport.pause();
    }
    this.#wakeUp();
  }

  /** The client closed its side, or the socket failed. */
  end(): void {
    this.#eof = true;
    if (!this.#isGone) {
      this.#isGone = true;
      this.#resolveGone?.();
      const watchers = this.#goneWatchers ? [...this.#goneWatchers] : [];
      this.#goneWatchers = undefined;
      for (const fn of watchers) fn();
    }
    this.#wakeUp();
  }

  onGone(fn: () => void): () => void {
    if (this.#isGone) return () => undefined;
    const watchers = this.#goneWatchers ??= new Set();
    watchers.add(fn);
    return () => void watchers.delete(fn);
  }

  get connection(): SmtpConnection {
    return this.#connection;
  }

  /** Whether the client has gone (a hook call that began before then is not waited for). */
  get isGone(): boolean {
    return this.#isGone;
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.(true);
  }

  /** A wait's promise executor, made once: every command waits. */
  readonly #onWait = (resolve: (woken: boolean) => void): void => {
    this.#wake = resolve;
  };

  /** The session timer fired: ends a wait whose deadline has come, else waits on for it. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#wake === undefined) return;
    const now = this.clock.now();
    if (now < this.#deadline) {
      this.#arm(this.#deadline, now);
      return;
    }
    const w = this.#wake;
    this.#wake = undefined;
    w(false);
  };

  #arm(deadline: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= deadline) return;
    this.#timer?.cancel();
    this.#timerAt = deadline;
    this.#timer = this.clock.after(deadline - now, this.#onTimer);
  }

  /**
   * Waits for more input until `deadline` (epoch ms on the session's clock) and says why it
   * stopped: "woken" (input came, or something else woke it: look again), "timeout" or "eof".
   * It writes nothing; the caller answers.
   */
  async waitInput(deadline: number): Promise<Waited> {
    const w = this.#beginWait(deadline);
    return typeof w === "string" ? w : this.#waited(await w);
  }

  /** waitInput's part up to the sleep: its answer when it need not sleep, else the sleep (awaited by the caller: no frame of its own per command). */
  #beginWait(deadline: number): Waited | Promise<boolean> {
    this.flush();
    if (this.#paused) {
      this.#paused = false;
      this.#transport.resume();
    }
    if (this.#eof || this.#closed) return "eof";
    const now = this.clock.now();
    if (deadline <= now) return "timeout";
    this.onIdle?.();
    return this.#sleepUntil(deadline, now);
  }

  /** waitInput's answer once the sleep ended (`woke`: something woke it before the deadline). */
  #waited(woke: boolean): Waited {
    if (this.#closed || (this.#eof && this.input.size === 0)) return "eof";
    return woke ? "woken" : "timeout";
  }

  /** Seconds a read may wait: `configured`, or less once the server was under stress in this session. */
  readTimeout(configured: number): number {
    if (this.host.stressed) this.#stressed = true;
    return this.#stressed ? Math.min(configured, this.limits.stressTimeout) : configured;
  }

  /** Answers an idle client's timeout and closes. */
  async timedOut(): Promise<void> {
    this.log(LOGINFO, "timeout, closing connection");
    this.send(REPLIES.commandTimeout);
    await this.disconnect();
  }

  /** Reads one line (CRLF stripped) for a command or an AUTH continuation, within the command timeout. */
  nextLine(max: number): Promise<string | undefined> {
    this.#lineBegun = undefined;
    return this.#lineFrom(this.#look(max), max);
  }

  /** Goes on from what #look said to the line, or undefined when there is none. */
  async #lineFrom(step: Look, max: number): Promise<string | undefined> {
    for (;;) {
      if (typeof step === "string" || step === undefined) return step;
      if (step !== AGAIN) {
        const v = await step;
        if (typeof v === "boolean") {
          step = this.#afterSleep(v);
          continue;
        }
      }
      step = this.#look(max);
    }
  }

  /**
   * One look for a line, without waiting: the line; undefined when there will be none; AGAIN; or
   * a promise to await before looking again: the sleep until input (its answer goes to
   * #afterSleep), or the session's end being answered.
   */
  #look(max: number): Look {
    if (this.#closed) return undefined;
    const r = this.input.readLine(max);
    switch (r.kind) {
      case "line":
        return r.text;
      case "bare_lf":
        this.send(REPLIES.bareLf);
        return this.disconnect();
      case "too_long":
        this.send(REPLIES.lineTooLong);
        return this.#countError() ? undefined : AGAIN;
      case "need_more": {
        if (this.input.looksLikeTls()) {
          this.send(REPLIES.tlsOnPlainPort);
          return this.disconnect();
        }
        if (this.#draining && !this.#txn?.sender()) return this.#goodbye();
        // Computed again each time: stress shortens it while we wait.
        const begun = this.#lineBegun ??= this.clock.now();
        const begin = this.#beginWait(begun + this.readTimeout(this.limits.commandTimeout) * 1000);
        return typeof begin === "string" ? this.#afterWait(begin) : begin;
      }
    }
  }

  /** After the sleep of #look (`woke`: input or something else woke it before the deadline). */
  #afterSleep(woke: boolean): Look {
    return this.#afterWait(this.#waited(woke));
  }

  /** After a wait that ended with `w`: the end at eof, the 421 once the command timeout has passed, else AGAIN. */
  #afterWait(w: Waited): Look {
    if (w === "eof") return undefined;
    if (w === "timeout" && this.clock.now() >= this.#lineBegun! + this.readTimeout(this.limits.commandTimeout) * 1000) {
      return this.timedOut();
    }
    return AGAIN;
  }

  /** Wakes a waiting session so it looks at its deadlines again (the server's stress changed). */
  poke(): void {
    this.#wakeUp();
  }

  /**
   * Back-pressure on output: while more than OUT_HIGH bytes wait to reach a client that does
   * not read, stop reading its commands; a client that reads nothing for the command timeout is
   * dropped. Returns false when the session ended.
   */
  async #throttle(): Promise<boolean> {
    if (this.#out.length + this.#transport.backlog() < OUT_HIGH) return true;
    this.flush();
    if (this.#transport.backlog() < OUT_HIGH) return true;
    if (!this.#paused) {
      this.#paused = true;
      this.#transport.pause();
    }
    const limit = this.readTimeout(this.limits.commandTimeout) * 1000;
    const drained = await Promise.race([
      this.#transport.drained().then(() => true),
      sleep(this.clock, limit).promise.then(() => false),
      this.gone.then(() => false),
    ]);
    if (drained) return true;
    this.log(LOGINFO, `client reads nothing (${this.#transport.backlog()} bytes unsent), closing`);
    this.#disconnected = true; // nothing more can reach it; the disconnect hooks run at the end
    this.#closed = true;
    this.#transport.abort();
    return false;
  }

  /** Waits up to `ms` for the client to send anything; true if it did (earlytalker). */
  async inputPending(ms: number): Promise<boolean> {
    if (this.input.size > 0) return true;
    if (this.#eof || this.#closed) return false;
    this.flush();
    return (await this.#sleep(ms)) && this.input.size > 0;
  }

  /** Sleeps until input, end of input, drain or close wakes us (true), or `ms` passes (false). */
  #sleep(ms: number): Promise<boolean> {
    const now = this.clock.now();
    return this.#sleepUntil(now + ms, now);
  }

  /** #sleep until `deadline`, the clock read at `now` by the caller (a read costs, and every command waits once). */
  #sleepUntil(deadline: number, now: number): Promise<boolean> {
    this.#deadline = deadline;
    const woken = new Promise<boolean>(this.#onWait);
    // After #wake is set: a clock may call back at once for a wait of 0 ms.
    this.#arm(deadline, now);
    return woken;
  }

  readLine(): Promise<string | undefined> {
    return this.nextLine(this.limits.authLineLength);
  }

  // ---- output ---------------------------------------------------------------------------

  /** Writes a reply from the table; `text` (a plugin's lines) replaces its own text. */
  send(reply: Reply, text?: readonly string[]): void {
    // Most replies are one line of the table's own: written without the arrays replyLines makes.
    this.#write(
      reply.code,
      text === undefined && reply.lines.length === 1
        ? `${reply.code} ${statusPrefix(reply, this.enhancedCodes)}${reply.lines[0]}\r\n`
        : formatReply(reply.code, replyLines(reply, text, this.enhancedCodes)),
    );
  }

  /** Writes a reply a plugin composed itself. */
  respond(code: number, ...lines: string[]): void {
    this.#write(code, formatReply(code, splitLines(lines)));
  }

  respondStatus(code: number, status: string, ...lines: string[]): void {
    const text = splitLines(lines);
    this.#write(code, formatReply(code, this.enhancedCodes ? text.map((l) => `${status} ${l}`) : text));
  }

  /** Queues a reply's wire text (`code` is what the error count looks at). */
  #write(code: number, wire: string): void {
    if (this.#closed) return;
    this.#lastCode = code;
    this.#out += wire;
    if (this.#out.length > 65536) this.flush();
  }

  flush(): void {
    if (this.#out === "" || this.#closed) return;
    const out = this.#out;
    this.#out = "";
    this.#transport.write(out);
  }

  /** Counts an error reply; at `max_errors` the session ends (421 is then the next error reply). Returns true when it ended. */
  #countError(): boolean {
    if (++this.#errors < this.limits.maxErrors) return false;
    this.send(REPLIES.tooManyErrors);
    void this.disconnect();
    return true;
  }

  // ---- the session ----------------------------------------------------------------------

  /** Runs the session to its end: connect hooks, greeting, then commands. */
  async run(): Promise<void> {
    try {
      const connecting = this.#connect();
      if (connecting) await connecting;
      while (!this.#closed) {
        // The check before the call: an await per command only when output really is backed up.
        if (this.#out.length + this.#transport.backlog() >= OUT_HIGH && !(await this.#throttle())) break;
        // nextLine's common course in this frame: no line yet, the sleep, then the line.
        const max = this.limits.lineLength;
        this.#lineBegun = undefined;
        let step = this.#look(max);
        if (step instanceof Promise) {
          const v = await step;
          step = typeof v === "boolean" ? this.#afterSleep(v) : AGAIN;
          if (step === AGAIN) step = this.#look(max);
        }
        const line = typeof step === "string" || step === undefined ? step : await this.#lineFrom(step, max);
        if (line === undefined) break;
        // Awaited here rather than in #dispatch: one async frame fewer per command, none for a
        // command answered at once.
        this.#verb = undefined;
        try {
          const running = this.#dispatch(line);
          if (running !== undefined) await running;
        } catch (e) {
          if (this.#verb === undefined) throw e;
          await this.#commandFailed(this.#verb, e);
        }
        if (this.#verb !== undefined && this.#lastCode >= 400 && !this.#closed) this.#countError();
      }
    } catch (e) {
      this.log(LOGERROR, `session failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      this.send(REPLIES.internalError);
    } finally {
      await this.#finish();
    }
  }

  /** The connect hooks, then the greeting (or the refusal). */
  #connect(): Promise<void> | undefined {
    const r = this.runHooksNow("connect");
    return r instanceof Promise ? r.then((o) => this.#greet(o)) : this.#greet(r);
  }

  /** The greeting, or the refusal, for the connect hooks' outcome. */
  #greet(r: Outcome): Promise<void> | undefined {
    if (r.code === DENY || r.code === DENY_DISCONNECT) {
      this.send(REPLIES.connectDenied, r.msg);
      return this.disconnect();
    }
    if (r.code === DENYSOFT || r.code === DENYSOFT_DISCONNECT) {
      this.send(REPLIES.connectDeferred, r.msg);
      return this.disconnect();
    }
    if (r.code !== DONE) this.send(REPLIES.greeting(this.greeting()));
    return undefined;
  }

  /**
   * Starts the session again as a connection from `endpoints` (XCLIENT): the transaction, the
   * greeting, AUTH and the notes go; TLS stays; the connect hooks run and greet again.
   */
  async restartAs(endpoints: Endpoints, setup: (c: SmtpConnection) => void): Promise<void> {
    await this.resetTransaction();
    const old = this.#connection;
    this.#connection = new SmtpConnection(endpoints, old.id, old.tls_cipher);
    this.authAdvertised = false;
    this.authUser = undefined;
    this.authMechanism = undefined;
    this.enhancedCodes = false;
    this.transactions = 0;
    setup(this.#connection);
    await this.#connect();
  }

  /**
   * Starts one command line: undefined when it was answered at once, else what run awaits.
   * `#verb` is then the verb whose handler ran (undefined for a line refused before any handler).
   */
  #dispatch(line: string): Promise<void> | undefined {
    this.commandCounter++;
    if (line.includes("\0")) {
      this.send(REPLIES.nulInCommand);
      this.#countError();
      return undefined;
    }
    if (line.includes("\r")) {
      this.send(REPLIES.bareCrInCommand);
      this.#countError();
      return undefined;
    }
    const { verb, rest } = splitCommand(line);
    // A line that begins with an SMTP verb is neither HTTP nor a header line: two tests saved a command.
    const known = isKnownVerb(verb);
    if (!known && isForbiddenCommand(line)) {
      this.log(LOGWARN, `non-SMTP command "${line.slice(0, 40)}", closing connection`);
      this.send(REPLIES.notSmtp);
      return this.disconnect();
    }
    const handler = known || isVerb(verb) ? COMMANDS[verb] : undefined;
    this.#lastCode = 0;
    this.#verb = verb;
    return handler && (verb !== "auth" || this.authAdvertised) ? handler(this, rest) : this.#unrecognized(verb, rest);
  }

  /** A command's handler threw: logged and answered 451. */
  async #commandFailed(verb: string, e: unknown): Promise<void> {
    this.log(LOGERROR, `command '${verb}' failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    this.send(REPLIES.commandFailed(verb));
    // After a failure inside DATA the input may be mid-message: never read it as commands.
    if (verb === "data") await this.disconnect();
  }

  async #unrecognized(verb: string, rest: string): Promise<void> {
    const r = await this.runHooks("unrecognized_command", verb, rest);
    if (r.code === DENY_DISCONNECT) {
      this.send(REPLIES.unrecognizedDisconnect, r.msg);
      await this.disconnect();
    } else if (r.code === DENY) this.send(REPLIES.unrecognized, r.msg);
    else if (r.code !== DONE) this.send(REPLIES.unrecognized);
  }

  greeting(): string {
    const custom = this.config("smtpgreeting");
    if (custom !== undefined) return /\bESMTP\b/.test(custom) ? custom : `${custom} ESMTP`;
    return `${this.me} ESMTP qpsmtpd ${VERSION} ready; send us your mail, but not your spam.`;
  }

  async #goodbye(): Promise<void> {
    this.send(REPLIES.shuttingDown(this.me));
    await this.disconnect();
  }

  /** Asks the session to end after its current transaction (SIGTERM). */
  drain(): void {
    this.#draining = true;
    if (!this.#txn?.sender()) this.#wakeUp();
  }

  /** Ends the session now with a 421 (the end of the shutdown grace period, a too slow client). */
  async abort(reply: Reply = REPLIES.shuttingDown(this.me)): Promise<void> {
    this.send(reply);
    await this.disconnect();
  }

  async #finish(): Promise<void> {
    if (!this.#disconnected) {
      this.#disconnected = true;
      await this.runHooks("disconnect").catch(() => undefined);
    }
    await this.resetTransaction().catch(() => undefined);
    await this.runHooks("post-connection").catch(() => undefined);
    this.flush();
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#transport.close();
    this.#ended = true;
    this.#resolveDone?.();
    this.onIdle?.();
  }

  // ---- transaction, hooks, config ------------------------------------------------------

  /** The current transaction, created if there is none. */
  get transaction(): SmtpTransaction {
    return (this.#txn ??= new SmtpTransaction({ dir: () => this.spoolDir(), threshold: this.limits.sizeThreshold }, this.clock.now()));
  }

  hasTransaction(): boolean {
    return this.#txn !== undefined;
  }

  resetTransaction(): Promise<void> {
    // A promise whatever happens, as before: callers chain .catch on it (#finish does).
    try {
      return this.resetTransactionNow() ?? SETTLED;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  resetTransactionNow(): Promise<void> | undefined {
    const t = this.#txn;
    if (!t) return undefined;
    // Without reset_transaction plugins nothing is waited for: this comes twice a connection.
    if (!this.registry.has("reset_transaction")) {
      this.#drop(t);
      return undefined;
    }
    return this.#resetWithHooks(t);
  }

  async #resetWithHooks(t: SmtpTransaction): Promise<void> {
    try {
      await this.runHooks("reset_transaction");
    } finally {
      this.#drop(t);
    }
  }

  #drop(t: SmtpTransaction): void {
    transactionControl.destroy(t);
    if (this.#txn === t) this.#txn = undefined;
  }

  async disconnect(): Promise<void> {
    if (!this.#disconnected) {
      this.#disconnected = true;
      await this.runHooks("disconnect");
    }
    this.flush();
    this.#closed = true;
    // Nothing can be written from here on, so the connection may close now, not after the last
    // hooks: a client that closes first (as most do after 221) then meets an orderly close.
    this.#transport.close();
    this.#wakeUp();
  }

  get closed(): boolean {
    return this.#closed;
  }

  async startTls(text?: string): Promise<void> {
    const context = this.registry.tlsContext;
    if (context === undefined) throw new Error("no plugin offered TLS (server.set_tls)");
    this.send(REPLIES.goAheadTls, text === undefined ? undefined : [text]);
    this.flush();
    // Nothing the client sent in plaintext with or after STARTTLS may survive (CVE-2011-0411).
    this.input.clear();
    let cipher: string;
    try {
      cipher = await this.#transport.startTls(context);
    } catch (e) {
      this.host.metrics.tlsHandshakes.inc({ kind: "starttls", result: "failed" });
      throw e;
    }
    this.host.metrics.tlsHandshakes.inc({ kind: "starttls", result: "ok" });
    this.input.clear();
    connectionControl.secured(this.connection, cipher);
    this.authAdvertised = false;
    await this.resetTransaction();
  }

  config(name: string, address?: Address): string | undefined {
    return this.configAll(name, address)[0];
  }

  configAll(name: string, address?: Address): readonly string[] {
    if (address) {
      const u = this.#configHook("user_config", name, [address, name]);
      if (u) return u;
    }
    // Most configurations have no config hook: straight to the files.
    if (!this.registry.has("config")) return this.host.configDir.all(name);
    return this.#configHook("config", name, [name]) ?? this.host.configDir.all(name);
  }

  /**
   * Config hooks are synchronous: the first `[OK, ...values]` wins. While a hook is answering
   * for `name`, a read of `name` (its own, or through code it calls) goes to the files.
   */
  #configHook<H extends "config" | "user_config">(hook: H, name: string, args: HookArgs[H]): string[] | undefined {
    const chain = this.registry.chain(hook);
    if (chain.length === 0 || this.#inConfigHook?.has(name)) return undefined;
    (this.#inConfigHook ??= new Set()).add(name);
    try {
      for (const e of chain) {
        try {
          const r: unknown = (e.fn as (...a: unknown[]) => unknown).call(new SessionCall(e.plugin, hook, this), this.transaction, ...args);
          if (Array.isArray(r) && r[0] === OK) return r.slice(1).map(String);
        } catch (err) {
          this.log(LOGERROR, `FATAL PLUGIN ERROR [${e.plugin.escapedName}]: ${(err as Error).message}`, hook);
        }
      }
      return undefined;
    } finally {
      this.#inConfigHook?.delete(name);
    }
  }

  log(level: number, message: string, hook = "", plugin = ""): void {
    this.host.logger.log(level, message, hook, plugin, this.connection.id);
  }

  runHooks<H extends HookName>(hook: H, ...args: HookArgs[H]): Promise<Outcome> {
    // The hooks' first argument is the transaction, made when first asked for: not for a hook nobody registered.
    return this.registry.has(hook) ? runHooks(this, hook, this.transaction, args) : NO_HOOKS_DONE;
  }

  runHooksNow<H extends HookName>(hook: H, ...args: HookArgs[H]): Outcome | Promise<Outcome> {
    return this.registry.has(hook) ? runHooksNow(this, hook, this.transaction, args) : NO_HOOKS;
  }

  /**
   * As qpsmtpd: into the plugin's note when that is a hash (made when there is none), and into
   * the `hook_<hook>` hash there, which keeps whatever else the plugin put in it. A plugin whose
   * note is something else (a string, a list) keeps it untouched.
   */
  recordReturn(plugin: string, hook: HookName, code: number): void {
    const target = this.#txn ?? this.connection;
    const found = target.notes(plugin);
    let n: Record<string, unknown>;
    if (found === undefined || found === null) target.notes(plugin, n = Object.create(null) as Record<string, unknown>);
    else if (isHash(found)) n = found;
    else return;
    const key = returnKey(hook);
    const entry = n[key];
    if (isHash(entry)) entry.return = code;
    else n[key] = { return: code };
  }

  authenticated(): boolean {
    return this.authUser !== undefined;
  }

  get me(): string {
    return this.config("me") ?? this.host.me;
  }

  spoolDir(): string {
    return this.config("spool_dir") ?? defaultSpoolDir(this.host);
  }

  tempFile(): string {
    const path = join(this.spoolDir(), `${this.clock.now()}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    transactionControl.addTempFile(this.transaction, path);
    return path;
  }
}
