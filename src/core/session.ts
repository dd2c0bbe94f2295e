/**
 * One SMTP session, independent of sockets: bytes come in through `feed`, replies go out through
 * a Transport. It owns framing, limits, timeouts and the connection-level state; the commands
 * themselves live in `commands.ts`, `data.ts` and `auth.ts`.
 * @module
 */
import type { SecureContext } from "node:tls";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Address } from "../smtp/address.ts";
import { InputBuffer } from "../smtp/input.ts";
import { isForbiddenCommand, isVerb, splitCommand } from "../smtp/command.ts";
import { formatReply, splitLines } from "../smtp/reply.ts";
import type { Registry } from "../plugin/registry.ts";
import type { Plugin } from "../plugin/plugin.ts";
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE, LOGERROR, LOGINFO, LOGWARN, OK } from "./codes.ts";
import { Connection, type ConnectionInfo } from "./connection.ts";
import type { HookArgs, HookName } from "./hooks.ts";
import { type Outcome, runHooks, type RunContext } from "./hook_runner.ts";
import type { SessionApi } from "./session_api.ts";
import { Transaction } from "./transaction.ts";
import { COMMANDS } from "./commands.ts";
import { readLimits, type Limits } from "./limits.ts";

/** Where replies go and how the connection is upgraded or closed; the server implements it on a socket. */
export interface Transport {
  write(data: string): void;
  /** Upgrades to TLS after the 220 was flushed; resolves with the cipher name. */
  startTls(context: SecureContext): Promise<string>;
  /** Flushes pending output and closes. */
  close(): void;
  /** Stops reading from the client until `resume` (back-pressure). */
  pause(): void;
  resume(): void;
}

export interface SessionOptions {
  readonly registry: Registry;
  readonly transport: Transport;
  readonly info: ConnectionInfo;
  readonly id?: string;
  /** Cipher name when the connection arrived over implicit TLS. */
  readonly tlsCipher?: string;
}

/** Input held before reading from the client pauses. */
const HIGH_WATER = 256 * 1024;

export class Session implements SessionApi, RunContext {
  readonly registry: Registry;
  readonly connection: Connection;
  readonly limits: Limits;
  /** @internal */ readonly input = new InputBuffer();
  /** @internal */ readonly transport: Transport;
  #txn: Transaction | undefined;
  readonly #views = new Map<Plugin, Plugin>();
  #wake: (() => void) | undefined;
  #eof = false;
  #closed = false;
  #disconnected = false;
  #paused = false;
  #out = "";
  #errors = 0;
  #lastCode = 0;
  /** Set by SIGTERM handling: finish the current transaction, then say goodbye. */
  #draining = false;
  /** @internal */ authAdvertised = false;
  auth_user: string | undefined;
  auth_mechanism: string | undefined;
  command_counter = 0;
  /** Called whenever the session blocks waiting for the client (the test harness uses it). */
  onIdle: (() => void) | undefined;
  /** Resolves when the session has ended. */
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(opts: SessionOptions) {
    this.registry = opts.registry;
    this.transport = opts.transport;
    this.connection = new Connection(opts.info, opts.id ?? randomBytes(4).toString("hex"));
    if (opts.tlsCipher) this.connection.tls_cipher = opts.tlsCipher;
    this.limits = readLimits(this.registry.host.configDir, (m) => this.log(LOGERROR, m));
    this.done = new Promise((r) => (this.#resolveDone = r));
  }

  // ---- input ----------------------------------------------------------------------------

  /** Bytes from the client. */
  feed(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.input.push(chunk);
    if (this.input.size > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.transport.pause();
    }
    this.#wakeUp();
  }

  /** The client closed its side, or the socket failed. */
  end(): void {
    this.#eof = true;
    this.#wakeUp();
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /**
   * Waits for more input until `deadline` (epoch ms). Returns false when the client went away
   * or the deadline passed (then the session has answered 421 and is closing).
   * @internal
   */
  async waitInput(deadline: number): Promise<boolean> {
    this.flush();
    if (this.#paused) {
      this.#paused = false;
      this.transport.resume();
    }
    if (this.#eof || this.#closed) return false;
    const ms = deadline - Date.now();
    if (ms <= 0) return this.#timedOut();
    this.onIdle?.();
    if (!(await this.#sleep(ms))) return this.#timedOut();
    return !this.#closed && (this.input.size > 0 || !this.#eof);
  }

  #timedOut(): false {
    this.log(LOGINFO, "timeout, closing connection");
    this.respond(421, "4.4.2 Connection timed out, closing");
    void this.disconnect();
    return false;
  }

  /** A per-command deadline from `timeoutsmtpd`/`timeout`. @internal */
  commandDeadline(): number {
    return Date.now() + this.limits.commandTimeout * 1000;
  }

  /** Reads one line (CRLF stripped) for a command or an AUTH continuation. @internal */
  async nextLine(max: number, deadline = this.commandDeadline()): Promise<string | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      const r = this.input.readLine(max);
      switch (r.kind) {
        case "line":
          return r.text;
        case "bare_lf":
          this.respond(500, "5.5.2 Error: bare <LF> received; lines must end in CRLF");
          await this.disconnect();
          return undefined;
        case "too_long":
          this.respond(500, "5.5.2 Error: line too long");
          if (this.#countError()) return undefined;
          continue;
        case "need_more":
          if (this.input.looksLikeTls()) {
            this.respond(500, "5.5.2 Error: TLS handshake on a plaintext port; use STARTTLS");
            await this.disconnect();
            return undefined;
          }
          if (this.#draining && !this.#txn?.sender()) {
            await this.#goodbye();
            return undefined;
          }
          if (!(await this.waitInput(deadline))) return undefined;
      }
    }
  }

  /** Waits up to `ms` for the client to send anything; true if it did (earlytalker). */
  async input_pending(ms: number): Promise<boolean> {
    if (this.input.size > 0) return true;
    if (this.#eof || this.#closed) return false;
    this.flush();
    return (await this.#sleep(ms)) && this.input.size > 0;
  }

  /** Sleeps until input, end of input, drain or close wakes us (true), or `ms` passes (false). */
  async #sleep(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const woke = await new Promise<boolean>((resolve) => {
      this.#wake = () => resolve(true);
      timer = setTimeout(() => resolve(false), ms);
    });
    clearTimeout(timer);
    this.#wake = undefined;
    return woke;
  }

  read_line(): Promise<string | undefined> {
    return this.nextLine(this.limits.authLineLength);
  }

  // ---- output ---------------------------------------------------------------------------

  respond(code: number, ...lines: string[]): void {
    if (this.#closed) return;
    this.#lastCode = code;
    this.#out += formatReply(code, splitLines(lines));
    if (this.#out.length > 65536) this.flush();
  }

  /** Replies with a hook's message lines, or the default text when it gave none. @internal */
  reply(code: number, outcome: Outcome, ...fallback: string[]): void {
    this.respond(code, ...(outcome.msg.length ? outcome.msg : fallback));
  }

  /** @internal */
  flush(): void {
    if (this.#out === "" || this.#closed) return;
    const out = this.#out;
    this.#out = "";
    this.transport.write(out);
  }

  /** Counts an error reply; past `max_errors` the session ends. Returns true when it ended. */
  #countError(): boolean {
    if (++this.#errors <= this.limits.maxErrors) return false;
    this.respond(421, "4.7.0 Too many errors, closing connection");
    void this.disconnect();
    return true;
  }

  // ---- the session ----------------------------------------------------------------------

  /** Runs the session to its end: connect hooks, greeting, then commands. */
  async run(): Promise<void> {
    try {
      const r = await this.run_hooks("connect");
      if (r.code === DENY || r.code === DENY_DISCONNECT) {
        this.reply(550, r, "Connection from you denied, bye bye.");
        await this.disconnect();
      } else if (r.code === DENYSOFT || r.code === DENYSOFT_DISCONNECT) {
        this.reply(450, r, "Connection from you temporarily denied, bye bye.");
        await this.disconnect();
      } else if (r.code !== DONE) {
        this.respond(220, this.greeting());
      }
      while (!this.#closed) {
        const line = await this.nextLine(this.limits.lineLength);
        if (line === undefined) break;
        await this.#dispatch(line);
      }
    } catch (e) {
      this.log(LOGERROR, `session failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      this.respond(451, "4.3.0 Internal error - try again later");
    } finally {
      await this.#finish();
    }
  }

  async #dispatch(line: string): Promise<void> {
    this.command_counter++;
    if (line.includes("\0")) {
      this.respond(500, "5.5.2 Error: NUL character in command");
      this.#countError();
      return;
    }
    if (line.includes("\r")) {
      this.respond(501, "5.5.2 Syntax error: bare <CR> in command");
      this.#countError();
      return;
    }
    if (isForbiddenCommand(line)) {
      this.log(LOGWARN, `non-SMTP command "${line.slice(0, 40)}", closing connection`);
      this.respond(554, "5.5.1 Error: not an SMTP command, closing connection");
      await this.disconnect();
      return;
    }
    const { verb, rest } = splitCommand(line);
    const handler = isVerb(verb) ? COMMANDS[verb] : undefined;
    this.#lastCode = 0;
    try {
      if (handler && (verb !== "auth" || this.authAdvertised)) await handler(this, rest);
      else await this.#unrecognized(verb, rest);
    } catch (e) {
      this.log(LOGERROR, `command '${verb}' failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      this.respond(451, `Internal error - try again later - command '${verb}' failed unexpectedly`);
      // After a failure inside DATA the input may be mid-message: never read it as commands.
      if (verb === "data") await this.disconnect();
    }
    if (this.#lastCode >= 400 && !this.#closed) this.#countError();
  }

  async #unrecognized(verb: string, rest: string): Promise<void> {
    const r = await this.run_hooks("unrecognized_command", verb, rest);
    if (r.code === DENY_DISCONNECT) {
      this.reply(521, r, "Unrecognized command");
      await this.disconnect();
    } else if (r.code === DENY) this.reply(500, r, "Unrecognized command");
    else if (r.code !== DONE) this.respond(500, "Unrecognized command");
  }

  greeting(): string {
    const custom = this.config("smtpgreeting");
    if (custom !== undefined) return /\bESMTP\b/.test(custom) ? custom : `${custom} ESMTP`;
    return `${this.me} ESMTP qpsmtpd ${this.version} ready; send us your mail, but not your spam.`;
  }

  async #goodbye(): Promise<void> {
    this.respond(421, `4.3.2 ${this.me} Service shutting down, closing connection`);
    await this.disconnect();
  }

  /** Asks the session to end after its current transaction (SIGTERM). */
  drain(): void {
    this.#draining = true;
    if (!this.#txn?.sender()) this.#wakeUp();
  }

  /** Ends the session now with a 421 (the end of the shutdown grace period). */
  async abort(reason = "4.3.2 Service shutting down, closing connection"): Promise<void> {
    this.respond(421, reason);
    await this.disconnect();
  }

  async #finish(): Promise<void> {
    if (!this.#disconnected) {
      this.#disconnected = true;
      await this.run_hooks("disconnect").catch(() => undefined);
    }
    await this.reset_transaction().catch(() => undefined);
    await this.run_hooks("post-connection").catch(() => undefined);
    this.flush();
    this.#closed = true;
    this.transport.close();
    this.#resolveDone();
    this.onIdle?.();
  }

  // ---- SessionApi -----------------------------------------------------------------------

  get transaction(): Transaction {
    this.#txn ??= new Transaction(this.spool_dir(), this.limits.sizeThreshold);
    return this.#txn;
  }

  has_transaction(): boolean {
    return this.#txn !== undefined;
  }

  async reset_transaction(): Promise<void> {
    const t = this.#txn;
    if (!t) return;
    try {
      await this.run_hooks("reset_transaction");
    } finally {
      t.destroy();
      if (this.#txn === t) this.#txn = undefined;
    }
  }

  async disconnect(): Promise<void> {
    if (!this.#disconnected) {
      this.#disconnected = true;
      await this.run_hooks("disconnect");
    }
    this.flush();
    this.#closed = true;
    this.#wakeUp();
  }

  get closed(): boolean {
    return this.#closed;
  }

  async start_tls(context: SecureContext, reply = "Go ahead with TLS"): Promise<void> {
    this.respond(220, reply);
    this.flush();
    // Nothing the client sent in plaintext with or after STARTTLS may survive (CVE-2011-0411).
    this.input.clear();
    const cipher = await this.transport.startTls(context);
    this.input.clear();
    this.connection.tls_cipher = cipher;
    this.connection.forgetHello();
    this.authAdvertised = false;
    await this.reset_transaction();
  }

  config(name: string, address?: Address): string | undefined {
    return this.config_all(name, address)[0];
  }

  config_all(name: string, address?: Address): readonly string[] {
    if (address) {
      const u = this.#configHook("user_config", [address, name]);
      if (u) return u;
    }
    return this.#configHook("config", [name]) ?? this.registry.host.configDir.all(name);
  }

  /** Config hooks are synchronous: the first `[OK, ...values]` wins. */
  #configHook<H extends "config" | "user_config">(hook: H, args: HookArgs[H]): string[] | undefined {
    for (const e of this.registry.chain(hook)) {
      try {
        const r: unknown = (e.fn as (...a: unknown[]) => unknown).call(this.view(e.plugin, hook), this.transaction, ...args);
        if (Array.isArray(r) && r[0] === OK) return r.slice(1).map(String);
      } catch (err) {
        this.log(LOGERROR, `FATAL PLUGIN ERROR [${e.plugin.plugin_name()}]: ${(err as Error).message}`, hook);
      }
    }
    return undefined;
  }

  log(level: number, message: string, hook = "", plugin = ""): void {
    this.registry.host.logger.log(level, message, hook, plugin, this.connection.id);
  }

  run_hooks<H extends HookName>(hook: H, ...args: HookArgs[H]): Promise<Outcome> {
    return runHooks(this, hook, this.transaction, args);
  }

  /** @internal The per-session `this` of a plugin's hooks. */
  view(plugin: Plugin, hook: HookName): Plugin {
    let v = this.#views.get(plugin);
    if (!v) {
      v = Object.create(plugin) as Plugin;
      v.qp = this;
      this.#views.set(plugin, v);
    }
    v._hook = hook;
    return v;
  }

  /** @internal Stores `notes(<plugin>).hook_<hook>.return`, in the transaction when there is one. */
  notesFor(plugin: string, hook: string, code: number): void {
    const target = this.#txn ?? this.connection;
    let n = target.notes(plugin) as Record<string, unknown> | undefined;
    if (typeof n !== "object" || n === null) target.notes(plugin, (n = Object.create(null) as Record<string, unknown>));
    n[`hook_${hook.replace(/\W/g, "_")}`] = { return: code };
  }

  authenticated(): boolean {
    return this.auth_user !== undefined;
  }

  get me(): string {
    return this.config("me") ?? this.registry.host.me;
  }

  get version(): string {
    return this.registry.host.version;
  }

  spool_dir(): string {
    return this.config("spool_dir") ?? this.registry.host.spool_dir();
  }

  temp_file(): string {
    const path = join(this.spool_dir(), `${Date.now()}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    this.transaction.add_temp_file(path);
    return path;
  }
}
