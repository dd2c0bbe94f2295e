/**
 * The SMTP clients `make bench` needs that smtp-source is not: one that sends with BDAT (and the
 * same one with DATA, so the two are comparable), one that holds idle connections after EHLO,
 * and a probe for the time from start to the first 220.
 * @module
 */
import { spawn } from "node:child_process";
import * as net from "node:net";

/** One client connection: write text, read whole replies (the last line's code). */
class Conn {
  readonly #sock: net.Socket;
  #buf = "";
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setEncoding("latin1");
    sock.setNoDelay(true);
    sock.on("data", (d: string) => {
      this.#buf += d;
      this.#wakeUp();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#wakeUp();
    });
    sock.on("error", () => undefined);
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  static open(port: number): Promise<Conn> {
    return new Promise((res, rej) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => res(new Conn(s)));
      s.once("error", rej);
    });
  }

  write(text: string): void {
    this.#sock.write(text, "latin1");
  }

  /** The next complete reply's code. */
  async reply(): Promise<number> {
    for (;;) {
      // A reply ends at a line whose code is followed by a space (or is the whole line).
      let at = 0;
      for (;;) {
        const nl = this.#buf.indexOf("\r\n", at);
        if (nl < 0) break;
        if (this.#buf.charCodeAt(at + 3) !== 45 /* - */) {
          const code = Number(this.#buf.slice(at, at + 3));
          this.#buf = this.#buf.slice(nl + 2);
          return code;
        }
        at = nl + 2;
      }
      if (this.#closed) throw new Error("connection closed before a reply");
      await new Promise<void>((r) => (this.#wake = r));
    }
  }

  close(): void {
    this.#sock.destroy();
  }

  async quit(): Promise<void> {
    this.write("QUIT\r\n");
    await this.reply();
    this.close();
  }
}

async function expect(c: Conn, want: number, what: string): Promise<void> {
  const got = await c.reply();
  if (got !== want) throw new Error(`${what}: ${got}, expected ${want}`);
}

/** A 4 KB-ish message: CRLF lines, no line starting with a dot, exactly `size` body bytes. */
export function message(size: number): string {
  const head = "From: <bench@example.net>\r\nTo: <bench@example.com>\r\nSubject: bench\r\n\r\n";
  const line = `${"abcdefghijklmnopqrstuvwxyz0123456789".repeat(2)}\r\n`;
  let body = line.repeat(Math.floor(size / line.length));
  body += "x".repeat(Math.max(0, size - body.length - 2)) + "\r\n";
  return head + body;
}

export interface ChunkingRun {
  port: number;
  sessions: number;
  messages: number;
  size: number;
  /** BDAT n LAST in one chunk, or DATA with its dot. */
  mode: "bdat" | "data";
}

/**
 * Sends `messages` messages over `sessions` parallel sessions, each on a new connection; the
 * envelope and (BDAT) the chunk are pipelined. Resolves with the wall-clock seconds.
 */
export async function chunkingClient(r: ChunkingRun): Promise<number> {
  const msg = message(r.size);
  const envelope = "MAIL FROM:<bench@example.net>\r\nRCPT TO:<bench@example.com>\r\n";
  const bdat = `${envelope}BDAT ${Buffer.byteLength(msg, "latin1")} LAST\r\n${msg}`;
  const data = `${msg}.\r\n`;
  let left = r.messages;
  const one = async (): Promise<void> => {
    const c = await Conn.open(r.port);
    try {
      await expect(c, 220, "greeting");
      c.write("EHLO bench.example.net\r\n");
      await expect(c, 250, "EHLO");
      if (r.mode === "bdat") {
        c.write(bdat);
        await expect(c, 250, "MAIL");
        await expect(c, 250, "RCPT");
        await expect(c, 250, "BDAT LAST");
      } else {
        c.write(`${envelope}DATA\r\n`);
        await expect(c, 250, "MAIL");
        await expect(c, 250, "RCPT");
        await expect(c, 354, "DATA");
        c.write(data);
        await expect(c, 250, "end of data");
      }
      await c.quit();
    } finally {
      c.close();
    }
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: r.sessions }, async () => {
      while (left > 0) {
        left--;
        await one();
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

/** Connections held open after EHLO; `close` drops them all. */
export interface Held {
  readonly open: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  close(): void;
}

/** Opens `count` connections, `parallel` at a time, each greeted and past EHLO, and keeps them. */
export async function holdIdle(port: number, count: number, parallel = 200): Promise<Held> {
  const conns: Conn[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        let c: Conn | undefined;
        try {
          c = await Conn.open(port);
          await expect(c, 220, "greeting");
          c.write("EHLO idle.example.net\r\n");
          await expect(c, 250, "EHLO");
          conns.push(c);
        } catch (e) {
          c?.close();
          failed++;
          firstError ??= (e as Error).message;
        }
      }
    }),
  );
  return {
    open: conns.length,
    failed,
    firstError,
    close: () => conns.forEach((c) => c.close()),
  };
}

/** Milliseconds from spawning `cmd` to the first accepted connection on `port`, and to its `220`. */
export async function timeToGreeting(cmd: string[], port: number, cwd: string): Promise<{ listening: number; greeting: number }> {
  const t0 = performance.now();
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: "ignore", cwd });
  let exited = false;
  child.once("exit", () => (exited = true));
  try {
    for (;;) {
      if (exited) throw new Error(`${cmd.join(" ")} exited before answering`);
      if (performance.now() - t0 > 20000) throw new Error("no 220 within 20 s");
      const c = await Conn.open(port).catch(() => undefined);
      if (!c) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const listening = performance.now() - t0;
      const code = await c.reply().catch(() => 0);
      const greeting = performance.now() - t0;
      c.close();
      if (code !== 220) throw new Error(`first reply ${code}, not 220`);
      return { listening, greeting };
    }
  } finally {
    if (!exited) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await new Promise((r) => child.once("exit", r));
      clearTimeout(t);
    }
  }
}
