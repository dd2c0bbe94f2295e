/**
 * An in-process SMTP session for tests, ours and plugin authors': no socket, real hooks.
 *
 * ```ts
 * const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { rcpthosts: "example.org" } });
 * await t.command("HELO client.example");
 * expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
 * ```
 * @module
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../config/files.ts";
import type { HookFn, HookName, PluginModule } from "../core/hooks.ts";
import { Logger } from "../core/logger.ts";
import { Session, type Transport } from "../core/session.ts";
import { PluginHost } from "../plugin/host.ts";
import { loadRegistry } from "../plugin/loader.ts";
import { Plugin } from "../plugin/plugin.ts";
import type { Registry } from "../plugin/registry.ts";
import { BUILTINS } from "../../plugins/mod.ts";

export interface TestReply {
  readonly code: number;
  readonly lines: string[];
  /** All lines joined by newlines, without codes. */
  readonly text: string;
}

export interface TestSessionOptions {
  /** `config/plugins` lines, e.g. `["relay", "rcpt_ok", "queue/maildir /tmp/m"]`. */
  readonly plugins?: readonly string[];
  /** Config values by name (each value a line); these win over files. */
  readonly config?: Readonly<Record<string, string | readonly string[]>>;
  /** Config directories searched for everything else (default: a new empty one). */
  readonly configDirs?: readonly string[];
  /** Extra plugin modules by name, found before the built-ins. */
  readonly modules?: Readonly<Record<string, PluginModule>>;
  readonly remoteIp?: string;
  readonly localPort?: number;
  /** Wait for the greeting before returning (default true); false lets a test talk first. */
  readonly waitForGreeting?: boolean;
  /** Log level printed to stderr (default: nothing). */
  readonly logLevel?: number;
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
  pause(): void {}
  resume(): void {}
}

export function parseReplies(text: string): TestReply[] {
  const out: TestReply[] = [];
  let lines: string[] = [];
  for (const line of text.split("\r\n")) {
    const m = /^(\d{3})([ -])(.*)$/.exec(line);
    if (!m) continue;
    lines.push(m[3]!);
    if (m[2] === " ") {
      out.push({ code: Number(m[1]), lines, text: lines.join("\n") });
      lines = [];
    }
  }
  return out;
}

/** A plugin registry from config overrides and plugin lines, as a test (or a test server) needs. */
export async function testRegistry(opts: Pick<TestSessionOptions, "plugins" | "config" | "configDirs" | "modules" | "logLevel">): Promise<Registry> {
  const dirs = opts.configDirs ?? [mkdtempSync(join(tmpdir(), "qpsmtpd-test-"))];
  const config = new ConfigDir({ dirs });
  config.overrides.set("plugins", opts.plugins ?? []);
  if (!opts.config?.["logging"]) config.overrides.set("logging", []);
  for (const [k, v] of Object.entries(opts.config ?? {})) config.overrides.set(k, typeof v === "string" ? [v] : v);
  const host = new PluginHost(config, new Logger(opts.logLevel ?? -1));
  return loadRegistry({ host, builtins: { ...BUILTINS, ...opts.modules }, defaultPluginDirs: [] });
}

export class TestSession {
  readonly session: Session;
  readonly registry: Registry;
  readonly #transport: MemoryTransport;
  #seen = 0;
  #idle: Promise<void>;
  #markIdle!: () => void;
  #mocks: Array<[HookName, Plugin]> = [];

  private constructor(session: Session, registry: Registry, transport: MemoryTransport) {
    this.session = session;
    this.registry = registry;
    this.#transport = transport;
    this.#idle = this.#nextIdle();
    session.onIdle = () => this.#markIdle();
  }

  #nextIdle(): Promise<void> {
    return new Promise((r) => (this.#markIdle = r));
  }

  static async start(opts: TestSessionOptions = {}): Promise<TestSession> {
    const registry = await testRegistry(opts);
    const transport = new MemoryTransport();
    const session = new Session({
      registry,
      transport,
      info: { remote_ip: opts.remoteIp ?? "127.0.0.1", remote_port: 40000, local_ip: "127.0.0.1", local_port: opts.localPort ?? 25 },
      id: "test",
    });
    const t = new TestSession(session, registry, transport);
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

  /** Every reply so far. */
  get replies(): TestReply[] {
    return parseReplies(this.#transport.out);
  }

  /** The greeting (the first reply). */
  get greeting(): TestReply | undefined {
    return this.replies[0];
  }

  get closed(): boolean {
    return this.#transport.closed;
  }

  get tlsStarted(): number {
    return this.#transport.tlsStarted;
  }

  /** Sends raw bytes and returns the replies they caused. */
  async send(data: string | Uint8Array): Promise<TestReply[]> {
    if (this.closed) return [];
    this.session.feed(typeof data === "string" ? Buffer.from(data, "latin1") : data);
    await this.#wait();
    const all = this.replies;
    const fresh = all.slice(this.#seen);
    this.#seen = all.length;
    return fresh;
  }

  /** Sends one command line and returns its (last) reply. */
  async command(line: string): Promise<TestReply> {
    const r = await this.send(`${line}\r\n`);
    return r[r.length - 1] ?? { code: 0, lines: [], text: "" };
  }

  /** Sends a message after DATA's 354: the text (LF or CRLF lines) is dot-stuffed and terminated. */
  async data(message: string): Promise<TestReply> {
    const body = message.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    const r = await this.send(`${body}${body.endsWith("\r\n") || body === "" ? "" : "\r\n"}.\r\n`);
    return r[r.length - 1] ?? { code: 0, lines: [], text: "" };
  }

  /** Puts a fake plugin first in `hook`'s chain. */
  mockHook<H extends HookName>(hook: H, fn: HookFn<H>): void {
    const p = new Plugin(`mock_${hook}`, `mock_${hook}`, [], {}, this.registry.host);
    this.registry.prepend(hook, p, fn as unknown as HookFn<HookName>);
    this.#mocks.push([hook, p]);
  }

  unmockHook(hook: HookName): void {
    for (const [h, p] of this.#mocks) if (h === hook) this.registry.remove(h, p);
    this.#mocks = this.#mocks.filter(([h]) => h !== hook);
  }

  mockConfig(name: string, value: string | readonly string[]): void {
    this.registry.host.configDir.overrides.set(name, typeof value === "string" ? [value] : value);
  }

  unmockConfig(name: string): void {
    this.registry.host.configDir.overrides.delete(name);
  }

  /** Ends the session as a vanished client would. */
  async end(): Promise<void> {
    this.session.end();
    await this.session.done;
  }
}
