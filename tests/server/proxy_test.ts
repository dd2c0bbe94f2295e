/**
 * PROXY listeners in the server, in this process over real loopback sockets: the header is read
 * before the limits, the pre-connection hooks and the session, which all see the real client;
 * every bad case is logged and closed without a word. Time is a FakeClock: the header's time
 * limit is moved, not waited.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import type { AnyPluginModule } from "qpsmtpd";
import type { ProxyListen } from "../../src/config/settings.ts";
import { SmtpServer } from "../../src/server/server.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { testRegistry } from "../../src/testing/registry.ts";

interface Seen {
  pre: string[];
  connect: string[];
}

interface Running {
  port: number;
  clock: FakeClock;
  logs: string[];
  seen: Seen;
  stop(): Promise<void>;
}

const open: Running[] = [];
afterAll(async () => {
  for (const r of open) await r.stop();
});

/** A PROXY listener with a plugin that records what pre-connection and connect see. */
async function server(opts: { trusted?: string[]; maxFromIp?: number } = {}): Promise<Running> {
  const clock = new FakeClock();
  const seen: Seen = { pre: [], connect: [] };
  const recorder: AnyPluginModule = {
    hook_pre_connection(_txn: unknown, info: { remote_ip: string; remote_port: number; local_ip: string; local_port: number }) {
      seen.pre.push(`${info.remote_ip}:${info.remote_port}>${info.local_ip}:${info.local_port}`);
      return undefined;
    },
    hook_connect(
      this: { connection: { remote_ip: string; remote_port: number; local_ip: string; local_port: number; notes(k: string): unknown } },
    ) {
      const c = this.connection;
      seen.connect.push(`${c.remote_ip}:${c.remote_port}>${c.local_ip}:${c.local_port} via ${JSON.stringify(c.notes("proxy") ?? null)}`);
      return undefined;
    },
  } as unknown as AnyPluginModule;
  const registry = await testRegistry({ plugins: ["recorder"], modules: { recorder }, clock });
  const logs: string[] = [];
  registry.host.logger.sink = (_level, _hook, plugin, message) => (logs.push(`${plugin}: ${message}`), true);
  const proxy: ProxyListen = { trusted: opts.trusted ?? ["10.0.0.0/8", "127.0.0.0/8"], timeoutMs: 10_000 };
  const srv = new SmtpServer(registry, {
    listen: [{ host: "127.0.0.1", port: 0, tls: false, proxy }],
    limitConnections: 10,
    maxFromIp: opts.maxFromIp ?? 10,
  });
  const [addr] = await srv.start();
  srv.open();
  const r = { port: addr!.port, clock, logs, seen, stop: () => srv.stop(100) };
  open.push(r);
  return r;
}

/** A raw peer: everything it received, and whether the server closed. */
class Peer {
  readonly sock: net.Socket;
  received = "";
  closed = false;
  #waiters: Array<() => void> = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on("data", (d: Buffer) => {
      this.received += d.toString("latin1");
      this.#wake();
    });
    sock.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    sock.on("error", () => undefined);
  }

  static connect(port: number): Promise<Peer> {
    return new Promise((res, rej) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => res(new Peer(s)));
      s.once("error", rej);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `pred` holds (or 5 s pass) and returns it. */
  async until(pred: () => boolean, ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) {
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return pred();
  }

  write(b: string | Uint8Array): Promise<void> {
    return new Promise((r) => this.sock.write(b, () => r()));
  }

  async reply(code: number): Promise<void> {
    const ok = await this.until(() => new RegExp(`(^|\\r\\n)${code} [^\\r\\n]*\\r\\n`).test(this.received));
    if (!ok) throw new Error(`no ${code}; have ${JSON.stringify(this.received)} closed=${this.closed}`);
  }
}

const v1 = (src: string, sport: number, dst = "192.0.2.25", dport = 25): string => `PROXY TCP4 ${src} ${dst} ${sport} ${dport}\r\n`;
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2Tcp4(src: number[], sport: number, dst: number[], dport: number, extraLen = 0): Uint8Array {
  const body = [...src, ...dst, sport >> 8, sport & 0xff, dport >> 8, dport & 0xff];
  const len = body.length + extraLen;
  return Uint8Array.from([...SIG, 0x21, 0x11, len >> 8, len & 0xff, ...body]);
}

/** Lets the server run its pending work (socket events, hooks). */
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe("a PROXY listener", () => {
  test("v1: pre-connection, connect and the session see the real client; the proxy's address is a note", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    await p.write(v1("203.0.113.9", 40000));
    await p.reply(220);
    expect(s.seen.pre).toEqual(["203.0.113.9:40000>192.0.2.25:25"]);
    expect(s.seen.connect).toHaveLength(1);
    const via = JSON.stringify({ remote_ip: "127.0.0.1", remote_port: p.sock.localPort });
    expect(s.seen.connect[0]).toBe(`203.0.113.9:40000>192.0.2.25:25 via ${via}`);
    expect(s.logs.join("\n")).toContain(`PROXY v1 TCP4 from 127.0.0.1:${p.sock.localPort}: client 203.0.113.9:40000 to 192.0.2.25:25`);
    await p.write("QUIT\r\n");
    await p.reply(221);
    p.sock.destroy();
  });

  test("v2 sent one byte at a time, then SMTP", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    for (const b of v2Tcp4([198, 51, 100, 7], 1234, [192, 0, 2, 1], 587)) {
      await p.write(Uint8Array.of(b));
      await new Promise((r) => setImmediate(r));
    }
    await p.reply(220);
    expect(s.seen.connect[0]).toStartWith("198.51.100.7:1234>192.0.2.1:587 via ");
    await p.write("HELO c\r\n");
    await p.reply(250);
    p.sock.destroy();
  });

  test("bytes pipelined behind the header reach the session, in order", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    await p.write(`${v1("203.0.113.10", 1)}HELO first\r\nNOOP\r\nQUIT\r\n`);
    expect(await p.until(() => p.closed)).toBe(true);
    const codes = [...p.received.matchAll(/^(\d{3}) /gm)].map((m) => Number(m[1]));
    expect(codes).toEqual([220, 250, 250, 221]);
    expect(p.received).toContain("Hi Unknown [203.0.113.10]");
    expect(s.seen.connect[0]).toStartWith("203.0.113.10:1>");
  });

  test("300 KB pipelined behind the header is served whole: reading pauses until the session takes over", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    const n = 50_000;
    await p.write(`${v1("203.0.113.11", 1)}${"NOOP\r\n".repeat(n)}`);
    const count = (): number => p.received.match(/^250 /gm)?.length ?? 0;
    expect(await p.until(() => count() >= n || p.closed, 20_000)).toBe(true);
    expect(p.closed).toBe(false);
    expect(count()).toBe(n);
    p.sock.destroy();
  });

  test("v2 LOCAL (the proxy's health check) keeps the socket's addresses", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    await p.write(Uint8Array.from([...SIG, 0x20, 0x00, 0, 0]));
    await p.reply(220);
    expect(s.seen.connect[0]).toStartWith(`127.0.0.1:${p.sock.localPort}>127.0.0.1:${s.port} via `);
    p.sock.destroy();
  });

  test("an untrusted peer is closed at once: no greeting, no hooks", async () => {
    const s = await server({ trusted: ["10.0.0.0/8", "::1"] });
    const p = await Peer.connect(s.port);
    const port = p.sock.localPort;
    expect(await p.until(() => p.closed)).toBe(true);
    expect(p.received).toBe("");
    expect(s.seen).toEqual({ pre: [], connect: [] });
    expect(s.logs.join("\n")).toContain(`127.0.0.1:${port} is not in proxy_trusted; closing`);
  });

  test.each([
    ["garbage", "EHLO spammer\r\n", "bad PROXY header: not a PROXY header"],
    ["a bad v1 address", "PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "bad PROXY header: v1 address not valid"],
    ["an overlong v1 line", `PROXY TCP4 ${"1".repeat(200)}`, "longer than 107"],
    ["a v2 length shorter than its addresses", Uint8Array.from([...SIG, 0x21, 0x11, 0, 4, 1, 2, 3, 4]), "shorter than the TCP4"],
    ["an oversized v2 header", Uint8Array.from([...SIG, 0x21, 0x11, 0xff, 0xff]), "over the limit"],
  ])("%s: logged and closed without a word", async (_name, bytes, reason) => {
    const s = await server();
    const p = await Peer.connect(s.port);
    await p.write(bytes);
    expect(await p.until(() => p.closed)).toBe(true);
    expect(p.received).toBe("");
    expect(s.seen).toEqual({ pre: [], connect: [] });
    expect(s.logs.join("\n")).toContain(reason);
  });

  test("silence, and a v2 length that promises more than comes, end at the time limit (10 s)", async () => {
    const s = await server();
    const silent = await Peer.connect(s.port);
    const liar = await Peer.connect(s.port);
    await liar.write(v2Tcp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 100));
    await tick();
    await s.clock.advance(9_000);
    await tick();
    expect(silent.closed || liar.closed).toBe(false);
    await s.clock.advance(1_000);
    expect(await silent.until(() => silent.closed)).toBe(true);
    expect(await liar.until(() => liar.closed)).toBe(true);
    expect(silent.received + liar.received).toBe("");
    const log = s.logs.join("\n");
    expect(log).toContain("no complete PROXY header within 10 s (0 bytes)");
    expect(log).toContain("no complete PROXY header within 10 s (28 bytes)");
    expect(s.seen.connect).toEqual([]);
  });

  test("a client that leaves mid-header is logged; nothing is left open", async () => {
    const s = await server();
    const p = await Peer.connect(s.port);
    await p.write("PROXY TCP4 1.2");
    await tick();
    p.sock.end();
    await p.until(() => p.closed);
    await tick();
    expect(s.logs.join("\n")).toContain("closed before a complete PROXY header");
  });

  test("-m counts the real client: two clients through one proxy are served, a second from one client is refused", async () => {
    const s = await server({ maxFromIp: 1 });
    const a = await Peer.connect(s.port);
    await a.write(v1("203.0.113.1", 1000));
    await a.reply(220);
    const b = await Peer.connect(s.port);
    await b.write(v1("203.0.113.2", 1000));
    await b.reply(220);
    const again = await Peer.connect(s.port);
    await again.write(v1("203.0.113.1", 1001));
    await again.reply(421);
    expect(s.logs.join("\n")).toContain("too many connections from 203.0.113.1 (1)");
    for (const p of [a, b, again]) p.sock.destroy();
  });
});
