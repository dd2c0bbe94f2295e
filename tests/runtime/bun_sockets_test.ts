import { afterEach, describe, expect, test } from "bun:test";
import * as tls from "node:tls";
import { BunConnection } from "../../src/runtime/bun_sockets.ts";
import type { AcceptedConnection } from "../../src/runtime/connection.ts";
import { createTlsContext, listen, type Listener } from "../../src/runtime/sockets.ts";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";

const FIXTURES = join(import.meta.dirname, "../fixtures/tls");
const context = createTlsContext({
  cert: readFileSync(join(FIXTURES, "server.crt"), "utf8"),
  key: readFileSync(join(FIXTURES, "server.key"), "utf8"),
});

/** Reads the greeting, says STARTTLS, and starts TLS as soon as the 220 comes; prints the reply to EHLO. */
const STARTTLS_CLIENT = `
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"STARTTLS\\r\\n")
f.readline()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
t.sendall(b"EHLO x\\r\\n")
print(t.makefile("rb").readline().decode().strip())
`;

let listener: Listener | undefined;
afterEach(() => listener?.close());

/** A listener on a free loopback port whose connections arrive through `next()`. */
async function serve(): Promise<{ port: number; next(): Promise<AcceptedConnection> }> {
  const waiting: Array<(c: AcceptedConnection) => void> = [];
  const early: AcceptedConnection[] = [];
  listener = await listen("127.0.0.1", 0, (c) => {
    const w = waiting.shift();
    if (w) w(c);
    else early.push(c);
  }, () => undefined);
  return {
    port: listener.bound.port,
    next: () => early.length ? Promise.resolve(early.shift()!) : new Promise((r) => waiting.push(r)),
  };
}

function client(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

function collect(s: net.Socket | tls.TLSSocket): { text(): string; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  s.on("data", (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((r) => s.once("close", () => r()));
  return { text: () => Buffer.concat(chunks).toString("latin1"), ended };
}

describe("connections on Bun's own sockets", () => {
  test("under Bun the listener hands out Bun sockets, with the client's addresses", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    const a = await srv.next();
    expect(a).toBeInstanceOf(BunConnection);
    expect(a.remoteAddress).toMatch(/127\.0\.0\.1$/);
    expect(a.remotePort).toBe(c.localPort!);
    expect(a.localPort).toBe(srv.port);
    c.destroy();
  });

  test("bytes sent before the session opens reach it first, in order, then the rest", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    const a = await srv.next();
    c.write("EHLO one\r\n");
    c.write("MAIL FROM:<a@b>\r\n");
    await Bun.sleep(50);
    let got = "";
    let ended = false;
    a.open().start({ feed: (d) => (got += Buffer.from(d).toString("latin1")), end: () => (ended = true) });
    c.end("QUIT\r\n");
    for (let i = 0; i < 100 && !ended; i++) await Bun.sleep(10);
    expect(got).toBe("EHLO one\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
    expect(ended).toBe(true);
  });

  test("output the client does not read is kept, counted and sent in full before the close", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    c.pause();
    const a = await srv.next();
    const t = a.open();
    t.start({ feed: () => undefined, end: () => undefined });
    const line = "250-" + "x".repeat(995) + "\r\n"; // 1001 bytes
    for (let i = 0; i < 8000; i++) t.write(line);
    expect(t.backlog()).toBeGreaterThan(0); // 8 MB do not fit in the kernel's buffers
    let drained = false;
    void t.drained().then(() => (drained = true));
    await Bun.sleep(50);
    expect(drained).toBe(false);
    t.write("250 last\r\n");
    t.close();
    const got = collect(c);
    c.resume();
    await got.ended;
    expect(drained).toBe(true);
    expect(t.backlog()).toBe(0);
    expect(got.text().length).toBe(8000 * line.length + 10);
    expect(got.text().endsWith("250-" + "x".repeat(995) + "\r\n250 last\r\n")).toBe(true);
  });

  test("a PROXY-style preamble: read, the rest given back, reading paused until the session opens", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    const a = await srv.next();
    c.write("HEADER\r\nEHLO x\r\n");
    const r = await a.readPreamble((chunk) => Buffer.from(chunk).toString("latin1"), new Promise(() => undefined));
    expect(r).toBe("HEADER\r\nEHLO x\r\n");
    a.unread(Buffer.from("EHLO x\r\n"));
    c.write("QUIT\r\n");
    await Bun.sleep(30);
    let got = "";
    a.open().start({ feed: (d) => (got += Buffer.from(d).toString("latin1")), end: () => undefined });
    for (let i = 0; i < 100 && !got.includes("QUIT"); i++) await Bun.sleep(10);
    expect(got).toBe("EHLO x\r\nQUIT\r\n");
    c.destroy();
  });

  test("a preamble that never comes times out; a client that leaves first is 'closed'", async () => {
    const srv = await serve();
    const c1 = await client(srv.port);
    const a1 = await srv.next();
    expect(await a1.readPreamble(() => undefined, Bun.sleep(50))).toBe("timeout");
    const c2 = await client(srv.port);
    const a2 = await srv.next();
    const r = a2.readPreamble(() => undefined, new Promise(() => undefined));
    c2.destroy();
    expect(await r).toBe("closed");
    c1.destroy();
  });

  test("STARTTLS: the 220 goes out in plaintext, then a TLS session carries the rest", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    const a = await srv.next();
    let got = "";
    const t = a.open();
    t.start({ feed: (d) => (got += Buffer.from(d).toString("latin1")), end: () => undefined });
    t.write("220 go ahead\r\n");
    const cipher = t.startTls(context);
    const greeting = await new Promise<string>((r) => c.once("data", (d: Buffer) => r(d.toString())));
    expect(greeting).toBe("220 go ahead\r\n");
    const secure = tls.connect({ socket: c, rejectUnauthorized: false, servername: "mx.example" });
    await new Promise<void>((r) => secure.once("secureConnect", () => r()));
    expect(await cipher).toMatch(/^TLS_|AES|CHACHA/);
    secure.write("EHLO secure\r\n");
    for (let i = 0; i < 100 && !got; i++) await Bun.sleep(10);
    expect(got).toBe("EHLO secure\r\n");
    const reply = collect(secure);
    t.write("250 secured\r\n");
    t.close();
    await reply.ended;
    expect(reply.text()).toBe("250 secured\r\n");
  });

  test("a ClientHello that arrives before the upgrade (the loop was busy) goes to TLS, not to the session", async () => {
    const srv = await serve();
    // Python's ssl in its own process answers the 220 at once, while this process is still busy.
    const py = Bun.spawn(["python3", "-c", STARTTLS_CLIENT, String(srv.port)], { stdout: "pipe", stderr: "pipe" });
    const a = await srv.next();
    const t = a.open();
    let plain = "";
    let secured = false;
    t.start({
      feed: (d) => {
        const text = Buffer.from(d).toString("latin1");
        if (secured) {
          if (text.startsWith("EHLO")) t.write("250 secure\r\n");
          return;
        }
        plain += text;
        if (!plain.includes("STARTTLS\r\n")) return;
        t.write("220 go ahead\r\n");
        const until = Date.now() + 300;
        while (Date.now() < until) { /* a busy event loop: the ClientHello arrives meanwhile */ }
        void t.startTls(context).then(() => (secured = true));
      },
      end: () => undefined,
    });
    t.write("220 test\r\n");
    const out = await new Response(py.stdout).text();
    expect(await py.exited).toBe(0);
    expect(out.trim()).toBe("250 secure");
    expect(plain).toBe("STARTTLS\r\n"); // the ClientHello never reached the session as text
    t.close();
  });

  test("a client that is no TLS client fails the handshake, and the failure is reported", async () => {
    const srv = await serve();
    const c = await client(srv.port);
    const a = await srv.next();
    const t = a.open();
    t.start({ feed: () => undefined, end: () => undefined });
    const cipher = t.startTls(context).then(() => "ok", (e: Error) => e.message);
    await Bun.sleep(20);
    c.write("this is not a ClientHello\r\n\r\n");
    expect(await cipher).not.toBe("ok");
    c.destroy();
  });
});
