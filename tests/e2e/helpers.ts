/** Running dist/qpsmtpd and real SMTP clients for the end-to-end tests. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../helpers/daemons.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const BINARY = join(ROOT, "dist/qpsmtpd");
export const TLS_DIR = join(ROOT, "tests/fixtures/tls");
export const EXAMPLE_PLUGINS = join(ROOT, "examples/plugins");

export { freePort };

export async function waitForPort(port: number, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), res(true)));
      c.once("error", () => res(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listening on ${port}`);
}

/** A config directory with the given files (name → content). */
export function configDir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "qpe2e-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, ".."), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

export interface Daemon {
  readonly port: number;
  readonly proc: ReturnType<typeof Bun.spawn>;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts a qpsmtpd command (the binary by default) on a free port. */
export async function startDaemon(
  config: string,
  opts: { cmd?: string[]; args?: string[]; env?: Record<string, string>; port?: number; waitPort?: number } = {},
): Promise<Daemon> {
  const port = opts.port ?? (await freePort());
  // One process unless a test asks for workers (a flag, or smtpd.yaml): /proc/<pid> then measures the server itself.
  const yaml = join(config, "smtpd.yaml");
  const asked = opts.args?.some((a) => a === "--workers" || a.startsWith("--workers=")) ||
    (existsSync(yaml) && /^workers:/m.test(readFileSync(yaml, "utf8")));
  const workers = asked ? [] : ["--workers", "1"];
  const cmd = [...(opts.cmd ?? [BINARY]), "--config", config, "-l", "127.0.0.1", "-p", String(port), ...workers, ...(opts.args ?? [])];
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env }, cwd: config });
  let err = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += dec.decode(c);
  })();
  try {
    await waitForPort(opts.waitPort ?? port);
  } catch (e) {
    proc.kill();
    throw new Error(`${(e as Error).message}\n${err}`);
  }
  return {
    port,
    proc,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      proc.kill(signal);
      return await proc.exited;
    },
  };
}

/** Runs a command to completion. */
export async function run(cmd: string[], input?: string): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: input === undefined ? "ignore" : "pipe" });
  if (input !== undefined) {
    const w = p.stdin as import("bun").FileSink;
    w.write(input);
    await w.end();
  }
  const [out, err] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text()]);
  return { code: await p.exited, out: out + err };
}

export function swaks(port: number, ...args: string[]): Promise<{ code: number; out: string }> {
  return run(["swaks", "--server", `127.0.0.1:${port}`, "--timeout", "20", ...args]);
}

/** A raw SMTP client: send lines, read replies. */
export class RawClient {
  readonly #sock: net.Socket;
  #buf = "";
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.#buf += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    sock.on("close", () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    sock.on("error", () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((res, rej) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => res(new RawClient(s)));
      s.once("error", rej);
    });
  }

  write(s: string): void {
    this.#sock.write(s);
  }

  /** The next complete reply's code and last line. */
  async reply(ms = 10000): Promise<{ code: number; text: string }> {
    const until = Date.now() + ms;
    for (;;) {
      const m = /^((?:\d{3}-.*\r\n)*)(\d{3}) (.*)\r\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return { code: Number(m[2]), text: m[3]! };
      }
      if (this.closed) return { code: 0, text: "closed" };
      if (Date.now() > until) throw new Error(`no reply; have ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  async command(line: string): Promise<{ code: number; text: string }> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.#sock.destroy();
  }

  /** Writes bytes as they are (UTF-8, binary). */
  writeBytes(b: Uint8Array): void {
    this.#sock.write(b);
  }

  /** Writes, then waits until the socket has taken it (so a flood is paced by the server's reads). */
  writeAndDrain(s: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.#sock.write(s) || this.closed) resolve();
      else this.#sock.once("drain", () => resolve());
    });
  }

  /** Waits until the server closed the connection; throws after `ms`. */
  async closedWithin(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > until) throw new Error("the server did not close the connection");
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}
