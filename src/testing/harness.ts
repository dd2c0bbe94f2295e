/**
 * An in-process SMTP session for tests, ours and plugin authors': no socket, the real engine and
 * real hooks, with a fake clock and DNS from a map when a test wants them.
 *
 * ```ts
 * const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { rcpthosts: "example.org" } });
 * await t.command("HELO client.example");
 * expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
 * ```
 * @module
 */
import type { Connection } from "../api/connection.ts";
import type { HookFn } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { Session as PublicSession } from "../api/session.ts";
import type { Transaction } from "../api/transaction.ts";
import { PluginInstance } from "../core/plugin_instance.ts";
import { preConnection } from "../core/pre_connection.ts";
import type { Registry } from "../core/registry.ts";
import { Session, type Transport } from "../core/session.ts";
import { testRegistry } from "./registry.ts";
import type { SetupOptions } from "./options.ts";

export interface TestReply {
  readonly code: number;
  /** The lines as sent, without the reply code (enhanced status codes included). */
  readonly lines: string[];
  /** The RFC 3463 enhanced status code of the first line (sent after EHLO), or "". */
  readonly status: string;
  /** All lines joined by newlines, without reply codes or enhanced status codes. */
  readonly text: string;
}

const STATUS = /^([245]\.\d{1,3}\.\d{1,3}) /;

/** A log line the session or a plugin wrote. */
export interface TestLogLine {
  readonly level: number;
  readonly hook: string;
  readonly plugin: string;
  readonly message: string;
}

export interface TestSessionOptions extends SetupOptions {
  /** The client's address. @default "127.0.0.1" */
  readonly remoteIp?: string;
  /** The port the client connected to. @default 25 */
  readonly localPort?: number;
  /** Addresses of other open connections, for pre-connection hooks. @default [] */
  readonly otherConnections?: readonly string[];
  /** The `-m` limit pre-connection hooks see. @default 0 */
  readonly maxConnIp?: number;
  /** Wait for the greeting before returning (default true); false lets a test talk first. */
  readonly waitForGreeting?: boolean;
}

class MemoryTransport implements Transport {
  out = "";
  closed = false;
  tlsStarted = 0;
  write(data: string): void {
    this.out += data;
  }
  startTls(): Promise<string> {
    this.tlsStarted++;
    return Promise.resolve("TEST-CIPHER");
  }
  close(): void {
    this.closed = true;
  }
  backlog(): number {
    return 0;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  abort(): void {
    this.closed = true;
  }
  pause(): void {}
  resume(): void {}
}

/** Splits wire text into replies (multi-line replies joined). */
export function parseReplies(text: string): TestReply[] {
  const out: TestReply[] = [];
  let lines: string[] = [];
  for (const line of text.split("\r\n")) {
    const m = /^(\d{3})([ -])(.*)$/.exec(line);
    if (!m) continue;
    lines.push(m[3]!);
    if (m[2] === " ") {
      out.push({
        code: Number(m[1]),
        lines,
        status: STATUS.exec(lines[0]!)?.[1] ?? "",
        text: lines.map((l) => l.replace(STATUS, "")).join("\n"),
      });
      lines = [];
    }
  }
  return out;
}

export class TestSession {
  readonly #session: Session | undefined;
  readonly #registry: Registry;
  readonly #transport: MemoryTransport;
  readonly #logs: TestLogLine[];
  #seen = 0;
  #idle: Promise<void>;
  #markIdle!: () => void;
  #mocks: Array<[HookName, PluginInstance]> = [];

  private constructor(session: Session | undefined, registry: Registry, transport: MemoryTransport, logs: TestLogLine[]) {
    this.#session = session;
    this.#registry = registry;
    this.#transport = transport;
    this.#logs = logs;
    this.#idle = this.#nextIdle();
    if (session) session.onIdle = () => this.#markIdle();
  }

  #nextIdle(): Promise<void> {
    return new Promise((r) => (this.#markIdle = r));
  }

  /**
   * Loads the plugins, runs the pre-connection hooks (a refusal is the only reply, and the
   * session is closed), then the connect hooks and the greeting.
   */
  static async start(opts: TestSessionOptions = {}): Promise<TestSession> {
    const registry = await testRegistry(opts);
    const logs: TestLogLine[] = [];
    const logger = registry.host.logger;
    const sink = logger.sink;
    // The test sees every line, whatever the logging plugins keep (each is still asked only
    // about the lines it keeps).
    logger.sinkUpTo = Infinity;
    logger.sink = (level, hook, plugin, message, connId) => {
      logs.push({ level, hook, plugin, message });
      return sink ? sink(level, hook, plugin, message, connId) : false;
    };
    const transport = new MemoryTransport();
    const endpoints = {
      remote_ip: opts.remoteIp ?? "127.0.0.1",
      remote_port: 40000,
      local_ip: "127.0.0.1",
      local_port: opts.localPort ?? 25,
    };
    registry.host.maxConnIp = opts.maxConnIp ?? 0;
    const refusal = await preConnection(registry, {
      ...endpoints,
      max_conn_ip: registry.host.maxConnIp,
      child_addrs: opts.otherConnections ?? [],
    });
    if (refusal) {
      transport.write(refusal);
      transport.close();
      const t = new TestSession(undefined, registry, transport, logs);
      return t;
    }
    const session = new Session({ registry, transport, endpoints, id: "test" });
    const t = new TestSession(session, registry, transport, logs);
    void session.run();
    if (opts.waitForGreeting === false) {
      await new Promise((r) => setTimeout(r, 10));
      return t;
    }
    await t.#wait();
    t.#seen = t.replies.length;
    return t;
  }

  async #wait(): Promise<void> {
    await this.#idle;
    this.#idle = this.#nextIdle();
  }

  #live(): Session {
    if (!this.#session) throw new Error("the connection was refused before its session started");
    return this.#session;
  }

  /** Every reply so far. */
  get replies(): TestReply[] {
    return parseReplies(this.#transport.out);
  }

  /** The greeting (the first reply), or the pre-connection refusal. */
  get greeting(): TestReply | undefined {
    return this.replies[0];
  }

  /** Every log line so far, plugins' and the core's. */
  get logs(): readonly TestLogLine[] {
    return this.#logs;
  }

  get closed(): boolean {
    return this.#transport.closed;
  }

  /** How many times the session upgraded to TLS (the test transport fakes the handshake). */
  get tlsStarted(): number {
    return this.#transport.tlsStarted;
  }

  /** The session as plugins see it (`this.qp`). */
  get qp(): PublicSession {
    return this.#live().api;
  }

  get connection(): Connection {
    return this.#live().connection;
  }

  /** The current transaction (created if there is none). */
  get transaction(): Transaction {
    return this.#live().transaction;
  }

  /** Resolves when the session has ended. */
  get done(): Promise<void> {
    return this.#session?.done ?? Promise.resolve();
  }

  /** Sends raw bytes and returns the replies they caused. */
  async send(data: string | Uint8Array): Promise<TestReply[]> {
    if (this.closed) return [];
    this.#live().feed(typeof data === "string" ? Buffer.from(data, "latin1") : data);
    await this.#wait();
    const all = this.replies;
    const fresh = all.slice(this.#seen);
    this.#seen = all.length;
    return fresh;
  }

  /** Sends one command line and returns its (last) reply. */
  async command(line: string): Promise<TestReply> {
    const r = await this.send(`${line}\r\n`);
    return r[r.length - 1] ?? { code: 0, lines: [], status: "", text: "" };
  }

  /** Sends a message after DATA's 354: the text (LF or CRLF lines) is dot-stuffed and terminated. */
  async data(message: string): Promise<TestReply> {
    const body = message.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    const r = await this.send(`${body}${body.endsWith("\r\n") || body === "" ? "" : "\r\n"}.\r\n`);
    return r[r.length - 1] ?? { code: 0, lines: [], status: "", text: "" };
  }

  /** Puts a fake plugin (named `mock_<hook>`) first in `hook`'s chain. */
  mockHook<H extends HookName>(hook: H, fn: HookFn<H>): void {
    const host = this.#registry.host;
    const p = new PluginInstance({ name: `mock_${hook}`, args: [], module: {}, host, server: this.#registry.server, timeoutMs: 30_000 });
    this.#registry.prepend(hook, p, fn as unknown as HookFn<HookName>);
    this.#mocks.push([hook, p]);
  }

  unmockHook(hook: HookName): void {
    for (const [h, p] of this.#mocks) if (h === hook) this.#registry.remove(h, p);
    this.#mocks = this.#mocks.filter(([h]) => h !== hook);
  }

  mockConfig(name: string, value: string | readonly string[]): void {
    this.#registry.host.configDir.overrides.set(name, typeof value === "string" ? [value] : value);
  }

  unmockConfig(name: string): void {
    this.#registry.host.configDir.overrides.delete(name);
  }

  /**
   * Puts the server under stress (as when open connections near the limit), or takes it out:
   * every read then waits at most `stress_timeout`.
   */
  stress(on: boolean): void {
    this.#registry.host.stressed = on;
    this.#session?.poke();
  }

  /** Ends the session as a vanished client would. */
  async end(): Promise<void> {
    this.#session?.end();
    await this.done;
  }
}
