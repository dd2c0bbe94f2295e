/**
 * dist/qpsmtpd behind a real HAProxy (Debian's haproxy, a private instance: `send-proxy` and
 * `send-proxy-v2`), and PROXY headers sent straight at it by swaks (`--proxy-*`) and a raw
 * socket. Clients bind loopback aliases (127.0.0.2, 127.0.0.3, ...) so the real client differs
 * from HAProxy's 127.0.0.1; the daemon's log, a plugin's view of the connection and the Received
 * header must show the real one. Hostile headers and untrusted peers are closed without a word.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Haproxy, startHaproxy } from "../helpers/haproxy.ts";
import { configDir, type Daemon, freePort, startDaemon, swaks } from "./helpers.ts";

const PROXY_TIMEOUT_S = 2;

/** A disk plugin that logs what every plugin sees of the connection. */
const SEEN_PLUGIN = `import { LOGWARN } from "qpsmtpd";
export function hook_connect(this: any) {
  const c = this.connection;
  this.log(LOGWARN, \`seen remote=\${c.remote_ip}:\${c.remote_port} local=\${c.local_ip}:\${c.local_port} proxy=\${JSON.stringify(c.notes("proxy") ?? null)}\`);
  return undefined;
}
`;

interface Setup {
  daemon: Daemon;
  proxyPort: number;
  maildir: string;
}

const daemons: Daemon[] = [];
const haproxies: Haproxy[] = [];

async function setup(args: string[] = []): Promise<Setup> {
  const plugins = mkdtempSync(join(tmpdir(), "qpproxy-plugins-"));
  writeFileSync(join(plugins, "seen.ts"), SEEN_PLUGIN);
  const maildir = join(mkdtempSync(join(tmpdir(), "qpproxy-md-")), "Maildir");
  const proxyPort = await freePort();
  const dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\n",
    plugin_dirs: `${plugins}\n`,
    plugins: `seen\nrcpt_ok\nqueue/maildir ${maildir}\n`,
    logging: "logging/warn LOGINFO\n",
    "smtpd.yaml": `proxy_ports: [${proxyPort}]\nproxy_trusted: [127.0.0.1, "::1"]\nproxy_timeout: ${PROXY_TIMEOUT_S}\n`,
  });
  const daemon = await startDaemon(dir, { args, waitPort: proxyPort });
  daemons.push(daemon);
  return { daemon, proxyPort, maildir };
}

afterAll(async () => {
  for (const h of haproxies) await h.stop();
  for (const d of daemons) await d.stop("SIGKILL");
});

const messages = (maildir: string): string[] =>
  existsSync(join(maildir, "new")) ? readdirSync(join(maildir, "new")).map((f) => readFileSync(join(maildir, "new", f), "utf8")) : [];

/** A raw client bound to `from`: what it received, and whether the server closed. */
class Peer {
  received = "";
  closed = false;
  readonly sock: net.Socket;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on("data", (d: Buffer) => (this.received += d.toString("latin1")));
    sock.on("close", () => (this.closed = true));
    sock.on("error", () => undefined);
  }

  static connect(port: number, from = "127.0.0.1"): Promise<Peer> {
    return new Promise((res, rej) => {
      const s = net.connect({ port, host: "127.0.0.1", localAddress: from });
      s.once("connect", () => res(new Peer(s)));
      s.once("error", rej);
    });
  }

  async until(pred: () => boolean, ms = 8000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await Bun.sleep(20);
    return pred();
  }

  /** Waits for a complete reply with `code`. */
  async reply(code: number): Promise<void> {
    const re = new RegExp(`(^|\\r\\n)${code} [^\\r\\n]*\\r\\n`);
    if (!(await this.until(() => re.test(this.received)))) {
      throw new Error(`no ${code}; have ${JSON.stringify(this.received)} closed=${this.closed}`);
    }
  }

  write(b: string | Uint8Array): Promise<void> {
    return new Promise((r) => this.sock.write(b, () => r()));
  }
}

/** The daemon's `seen` lines (one per connection that reached the connect hook). */
const seenLines = (d: Daemon): string[] => [...d.stderr().matchAll(/seen (remote=\S+ local=\S+ proxy=\S+)/g)].map((m) => m[1]!);

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

describe("behind HAProxy", () => {
  let s: Setup;
  let v1Port: number;
  let v2Port: number;

  beforeAll(async () => {
    s = await setup();
    const h = await startHaproxy([
      { target: { host: "127.0.0.1", port: s.proxyPort }, send: "send-proxy" },
      { target: { host: "127.0.0.1", port: s.proxyPort }, send: "send-proxy-v2" },
    ]);
    haproxies.push(h);
    [v1Port, v2Port] = h.ports as [number, number];
  });

  test("send-proxy (v1): a swaks message from 127.0.0.2 is received as from 127.0.0.2", async () => {
    const r = await swaks(v1Port, "--local-interface", "127.0.0.2", "--to", "user@example.org", "--header", "Subject: via v1");
    expect(r.out).toMatch(/<- {2}250 (?:2\.0\.0 )?Queued!/);
    expect(r.code).toBe(0);
    const msg = messages(s.maildir).find((m) => m.includes("Subject: via v1"));
    expect(msg).toMatch(/Received: from Unknown \(HELO [^)]+\) \(127\.0\.0\.2\)/);
    const line = seenLines(s.daemon).find((l) => l.startsWith("remote=127.0.0.2:"));
    // The client's address; the destination is HAProxy's frontend; the proxy itself is a note.
    expect(line).toMatch(
      new RegExp(
        `^remote=127\\.0\\.0\\.2:\\d+ local=127\\.0\\.0\\.1:${v1Port} proxy=\\{"remote_ip":"127\\.0\\.0\\.1","remote_port":\\d+\\}$`,
      ),
    );
    expect(s.daemon.stderr()).toMatch(
      new RegExp(`PROXY v1 TCP4 from 127\\.0\\.0\\.1:\\d+: client 127\\.0\\.0\\.2:\\d+ to 127\\.0\\.0\\.1:${v1Port}`),
    );
  });

  test("send-proxy-v2: a swaks message from 127.0.0.3 is received as from 127.0.0.3", async () => {
    const r = await swaks(v2Port, "--local-interface", "127.0.0.3", "--to", "user@example.org", "--header", "Subject: via v2");
    expect(r.out).toMatch(/<- {2}250 (?:2\.0\.0 )?Queued!/);
    const msg = messages(s.maildir).find((m) => m.includes("Subject: via v2"));
    expect(msg).toMatch(/Received: from Unknown \(HELO [^)]+\) \(127\.0\.0\.3\)/);
    expect(seenLines(s.daemon).some((l) => new RegExp(`^remote=127\\.0\\.0\\.3:\\d+ local=127\\.0\\.0\\.1:${v2Port} proxy=`).test(l))).toBe(
      true,
    );
    expect(s.daemon.stderr()).toMatch(/PROXY v2 TCP4 from 127\.0\.0\.1:\d+: client 127\.0\.0\.3:/);
  });
});

describe("PROXY headers sent straight at the daemon", () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup();
  });

  test("swaks --proxy-version 1: the spoofed TCP4 source is the client", async () => {
    const r = await swaks(
      s.proxyPort,
      ...["--proxy-version", "1", "--proxy-family", "TCP4", "--proxy-source", "192.0.2.77", "--proxy-source-port", "4242"],
      ...["--proxy-dest", "198.51.100.25", "--proxy-dest-port", "25", "--to", "user@example.org", "--header", "Subject: swaks v1"],
    );
    expect(r.out).toMatch(/<- {2}250 (?:2\.0\.0 )?Queued!/);
    expect(seenLines(s.daemon)).toContainEqual(
      expect.stringMatching(/^remote=192\.0\.2\.77:4242 local=198\.51\.100\.25:25 proxy=\{"remote_ip":"127\.0\.0\.1"/),
    );
    expect(messages(s.maildir).find((m) => m.includes("Subject: swaks v1"))).toContain("(192.0.2.77)");
  });

  test("swaks --proxy-version 2 over IPv6: the spoofed source in canonical form", async () => {
    const r = await swaks(
      s.proxyPort,
      ...["--proxy-version", "2", "--proxy-family", "AF_INET6", "--proxy-source", "2001:DB8:0:0::77", "--proxy-source-port", "5353"],
      ...["--proxy-dest", "2001:db8::25", "--proxy-dest-port", "587", "--to", "user@example.org", "--header", "Subject: swaks v2"],
    );
    expect(r.out).toMatch(/<- {2}250 (?:2\.0\.0 )?Queued!/);
    expect(seenLines(s.daemon)).toContainEqual(expect.stringMatching(/^remote=2001:db8::77:5353 local=2001:db8::25:587 proxy=/));
    expect(messages(s.maildir).find((m) => m.includes("Subject: swaks v2"))).toContain("(2001:db8::77)");
  });

  test("v2 LOCAL (a proxy's own health check) keeps the socket's address", async () => {
    const p = await Peer.connect(s.proxyPort, "127.0.0.1");
    await p.write(Uint8Array.from([...SIG, 0x20, 0x00, 0, 0]));
    await p.reply(220);
    await p.write("HELO check.example\r\n");
    await p.reply(250);
    expect(p.received).toContain("[127.0.0.1]");
    expect(s.daemon.stderr()).toContain(`PROXY v2 LOCAL from 127.0.0.1:${p.sock.localPort}: client 127.0.0.1:${p.sock.localPort}`);
    p.sock.destroy();
  });

  test("swaks' own --proxy-command LOCAL (command 2, 15 bytes: not the spec's) is refused at once", async () => {
    const r = await swaks(
      s.proxyPort,
      ...["--proxy-version", "2", "--proxy-command", "LOCAL", "--proxy-family", "AF_INET", "--proxy-source", "192.0.2.99"],
      ...["--proxy-source-port", "1", "--proxy-dest", "192.0.2.1", "--proxy-dest-port", "25", "--quit-after", "CONNECT"],
    );
    expect(r.out).not.toContain("<-  220");
    // Refused for what it says, not left to the time limit (its 15 bytes are one short of a header).
    expect(s.daemon.stderr()).toContain("bad PROXY header: v2 command 2 is neither LOCAL (0) nor PROXY (1)");
  });

  test("swaks --proxy with a malformed v1 header: no greeting, logged", async () => {
    const r = await swaks(s.proxyPort, "--proxy", "TCP4 192.0.2.1 192.0.2.2 25 070000", "--quit-after", "CONNECT");
    expect(r.out).not.toContain("<-  220");
    expect(r.code).not.toBe(0);
    expect(s.daemon.stderr()).toContain("bad PROXY header: v1 port not a number");
  });

  test("an untrusted client (127.0.0.5) is closed without a greeting", async () => {
    const p = await Peer.connect(s.proxyPort, "127.0.0.5");
    expect(await p.until(() => p.closed)).toBe(true);
    expect(p.received).toBe("");
    expect(s.daemon.stderr()).toMatch(/127\.0\.0\.5:\d+ is not in proxy_trusted; closing/);
  });

  test("a header one byte at a time, then SMTP", async () => {
    const p = await Peer.connect(s.proxyPort);
    for (const ch of "PROXY TCP4 203.0.113.44 192.0.2.25 31337 25\r\n") {
      await p.write(ch);
      await Bun.sleep(2);
    }
    await p.reply(220);
    await p.write("HELO slow.example\r\n");
    await p.reply(250);
    expect(p.received).toContain("[203.0.113.44]");
    await p.write("QUIT\r\n");
    await p.reply(221);
    expect(seenLines(s.daemon)).toContainEqual(expect.stringMatching(/^remote=203\.0\.113\.44:31337 local=192\.0\.2\.25:25 /));
  });

  test("SMTP pipelined in the same packet as the header is kept for the session", async () => {
    const p = await Peer.connect(s.proxyPort);
    await p.write("PROXY TCP4 203.0.113.45 192.0.2.25 1 25\r\nHELO piped.example\r\nQUIT\r\n");
    expect(await p.until(() => p.closed)).toBe(true);
    expect([...p.received.matchAll(/^(\d{3}) /gm)].map((m) => m[1])).toEqual(["220", "250", "221"]);
    expect(p.received).toContain("[203.0.113.45]");
  });

  test(`a v2 length that promises more than comes: closed at the time limit (${PROXY_TIMEOUT_S} s)`, async () => {
    const p = await Peer.connect(s.proxyPort);
    const begun = Date.now();
    // Declares 200 bytes, sends the 12-byte IPv4 block only.
    await p.write(Uint8Array.from([...SIG, 0x21, 0x11, 0, 200, 192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 25]));
    expect(await p.until(() => p.closed, 10_000)).toBe(true);
    expect(Date.now() - begun).toBeGreaterThanOrEqual(PROXY_TIMEOUT_S * 1000 - 200);
    expect(p.received).toBe("");
    expect(s.daemon.stderr()).toContain(`no complete PROXY header within ${PROXY_TIMEOUT_S} s (28 bytes)`);
  });

  test("garbage, and an oversized flood, are refused for what they are (not at the time limit), without a word", async () => {
    const g = await Peer.connect(s.proxyPort);
    await g.write("EHLO no.proxy.here\r\n");
    expect(await g.until(() => g.closed)).toBe(true);
    expect(g.received).toBe("");
    const f = await Peer.connect(s.proxyPort);
    void f.write("PROXY " + "x".repeat(1024 * 1024));
    expect(await f.until(() => f.closed)).toBe(true);
    expect(f.received).toBe("");
    expect(s.daemon.stderr()).toContain("bad PROXY header: not a PROXY header");
    expect(s.daemon.stderr()).toContain("bad PROXY header: v1 header longer than 107 bytes");
  });
});

describe("-m counts the real client", () => {
  test("max_from_ip 1: two clients through one HAProxy are both served; a second from one of them is refused", async () => {
    const s = await setup(["-m", "1"]);
    const h = await startHaproxy([
      { target: { host: "127.0.0.1", port: s.proxyPort }, send: "send-proxy" },
      { target: { host: "127.0.0.1", port: s.proxyPort }, send: "send-proxy-v2" },
    ]);
    haproxies.push(h);
    const [v1Port, v2Port] = h.ports as [number, number];
    const a = await Peer.connect(v1Port, "127.0.0.2");
    await a.reply(220);
    const b = await Peer.connect(v2Port, "127.0.0.3");
    await b.reply(220);
    const again = await Peer.connect(v2Port, "127.0.0.2");
    await again.reply(421);
    expect(again.received).toContain("421");
    expect(s.daemon.stderr()).toContain("too many connections from 127.0.0.2 (1)");
    for (const p of [a, b, again]) p.sock.destroy();
  });
});
