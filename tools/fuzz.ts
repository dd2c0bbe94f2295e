/**
 * `make fuzz`: a grammar-based SMTP session fuzzer against one dist/qpsmtpd process. Random verbs,
 * parameters, addresses from the relay corpus, bytes 0–255, CR/LF splits, pipelined bursts, AUTH
 * exchanges and STARTTLS in the middle, on several connections at once.
 *
 * It fails on a crash, a hang (no reply and no close within 10 s of a complete command), a `250`
 * to a recipient outside the local domain from a client that may not relay, or a resident size
 * above a bound. Usage: bun tools/fuzz.ts [--seconds 60] [--seed N] [--connections 8]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tls from "node:tls";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: { seconds: { type: "string", default: "60" }, seed: { type: "string" }, connections: { type: "string", default: "8" } },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const MAX_RSS_KB = 400 * 1024;
const HANG_MS = 10_000;

// A small seeded generator (mulberry32), so a failure can be replayed with --seed.
let seed = Number(values.seed ?? Date.now() % 2 ** 31) >>> 0;
const firstSeed = seed;
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number): boolean => rand() < p;

/** Recipients: the local domain, and the ways people have tried to relay through qpsmtpd. */
const RECIPIENTS = [
  "<user@example.org>",
  "<USER@Example.ORG>",
  "<postmaster@example.org>",
  "<user@evil.test>",
  "<user%evil.test@example.org>",
  "<evil.test!user@example.org>",
  '<"user@evil.test"@example.org>',
  "<@example.org:user@evil.test>",
  "<user@evil.test@example.org>",
  "<user@[192.0.2.1]>",
  "<user@example.org.evil.test>",
  "<>",
  "<postmaster>",
  "user@evil.test",
  "<user@example.org> NOTIFY=NEVER",
];
const VERBS = [
  "HELO",
  "EHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "RSET",
  "NOOP",
  "VRFY",
  "HELP",
  "AUTH",
  "STARTTLS",
  "QUIT",
  "BDAT",
  "XCLIENT",
  "EXPN",
];

function junk(max: number, crlf = false): string {
  let s = "";
  const n = Math.floor(rand() * max);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * 256);
    if (!crlf && (c === 10 || c === 13)) continue;
    s += String.fromCharCode(c);
  }
  return s;
}

function argument(verb: string): string {
  switch (verb) {
    case "HELO":
    case "EHLO":
      return chance(0.8) ? pick(["client.example", "[192.0.2.1]", "localhost", "x".repeat(300)]) : junk(40);
    case "MAIL":
      return `FROM:${
        pick([
          "<a@example.net>",
          "<>",
          "<a@example.net> SIZE=100",
          "<a@example.net> BODY=8BITMIME",
          "<a@example.net> SIZE=999999999999",
          junk(30),
        ])
      }`;
    case "RCPT":
      return `TO:${pick(RECIPIENTS)}`;
    case "AUTH":
      return pick(["PLAIN", "LOGIN", "CRAM-MD5", "PLAIN AHVzZXIAcGFzcw==", "PLAIN =", junk(20)]);
    default:
      return chance(0.5) ? "" : junk(30);
  }
}

interface Failure {
  readonly kind: string;
  readonly detail: string;
}
const failures: Failure[] = [];
const stats = { sessions: 0, commands: 0, messages: 0 };

/** One client connection and its reply reader. */
class Conn {
  sock: net.Socket;
  buf = "";
  closed = false;
  /** The session so far (`C:` sent, `S:` received), for the failure report. */
  readonly transcript: string[] = [];
  #waiter: (() => void) | undefined;
  constructor(sock: net.Socket) {
    this.sock = sock;
    this.#attach(sock);
  }
  #attach(s: net.Socket): void {
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      this.buf += d;
      if (this.buf.length > 1 << 22) this.buf = this.buf.slice(-(1 << 20));
      this.#waiter?.();
    });
    s.on("close", () => {
      this.closed = true;
      this.#waiter?.();
    });
    s.on("error", () => undefined);
  }
  write(s: string): void {
    this.transcript.push(`C: ${JSON.stringify(s.slice(0, 120))}`);
    if (!this.closed) this.sock.write(Buffer.from(s, "latin1"));
  }
  /** The next complete reply's code, 0 when the server closed, undefined on a hang. */
  async reply(): Promise<number | undefined> {
    const until = Date.now() + HANG_MS;
    for (;;) {
      const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3})(?: [^\r\n]*)?\r\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        this.transcript.push(`S: ${JSON.stringify(m[0].slice(0, 120))}`);
        return Number(m[2]);
      }
      if (this.closed) return 0;
      if (Date.now() > until) return undefined;
      await new Promise<void>((r) => {
        this.#waiter = r;
        setTimeout(r, 200);
      });
    }
  }
  async upgrade(): Promise<void> {
    this.sock.removeAllListeners("data");
    const t = tls.connect({ socket: this.sock, rejectUnauthorized: false });
    this.sock = t;
    this.buf = "";
    this.#attach(t);
    await new Promise<void>((r) => {
      t.once("secureConnect", () => r());
      t.once("error", () => r());
      t.once("close", () => r());
    });
  }
}

async function session(port: number, deadline: number): Promise<void> {
  const sock = await new Promise<net.Socket | undefined>((res) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => res(s));
    s.once("error", () => res(undefined));
  });
  if (!sock) return;
  stats.sessions++;
  const c = new Conn(sock);
  let authenticated = false;
  const hang = (what: string): void =>
    void failures.push({
      kind: "hang",
      detail: `no reply and no close within 10 s after ${JSON.stringify(what.slice(0, 80))}:\n  ${c.transcript.slice(-16).join("\n  ")}`,
    });
  if ((await c.reply()) === undefined) return hang("connect");
  // Half the sessions start well formed, so the fuzzing also reaches DATA and what follows.
  const script = chance(0.5) ? ["EHLO client.example", "MAIL FROM:<a@example.net>", "RCPT TO:<user@example.org>", "DATA"] : [];
  while (!c.closed && Date.now() < deadline) {
    const scripted = script.shift();
    const verb = scripted ? scripted.split(" ")[0]! : chance(0.9) ? pick(VERBS) : junk(12);
    let line = scripted ?? `${chance(0.2) ? verb.toLowerCase() : verb}${chance(0.9) ? " " : ""}${argument(verb)}`;
    if (chance(0.05)) line = "x".repeat(3000 + Math.floor(rand() * 5000)); // past the line limit
    // A bare LF: the server answers and closes (or, ending a line too long to read, it ends the
    // skipped line; what follows is then a command of its own, so replies lose step: start afresh).
    const bareLf = chance(0.03);
    if (bareLf) line += "\n";
    if (chance(0.05)) {
      // A pipelined burst: only liveness is checked.
      c.write(Array.from({ length: 2 + Math.floor(rand() * 6) }, () => `${pick(VERBS)} ${argument(pick(VERBS))}\r\n`).join(""));
      stats.commands++;
      if ((await c.reply()) === undefined) return hang("a pipelined burst");
      break; // the other replies would be taken for the next commands': start afresh
    }
    if (chance(0.02)) {
      // Half a line, then gone: nothing to expect.
      c.write(line.slice(0, 5));
      c.sock.destroy();
      return;
    }
    // A split write: the line arrives in two pieces.
    if (chance(0.2)) {
      const cut = Math.floor(rand() * line.length);
      c.write(line.slice(0, cut));
      await new Promise((r) => setTimeout(r, 2));
      c.write(`${line.slice(cut)}\r\n`);
    } else c.write(`${line}\r\n`);
    stats.commands++;
    const code = await c.reply();
    if (code === undefined) return hang(line);
    if (code === 0 || bareLf) break;
    const rcpt = /^RCPT TO:(.*)$/i.exec(line);
    if (rcpt && code === 250 && !authenticated) {
      const addr = rcpt[1]!.trim();
      const m = /^<([^>]*)>/.exec(addr);
      const inner = m?.[1] ?? addr;
      const postmaster = /^postmaster$/i.test(inner); // RFC 5321 4.5.1: always local
      const domain = inner.slice(inner.lastIndexOf("@") + 1).toLowerCase();
      const local = inner.slice(0, inner.lastIndexOf("@"));
      if (!postmaster && domain !== "example.org" || /[%!@]/.test(local.replace(/^@[^:]*:/, "")) || inner.startsWith("@")) {
        failures.push({
          kind: "relay",
          detail: `250 to ${addr} from a client that may not relay:\n  ${c.transcript.slice(-16).join("\n  ")}`,
        });
      }
    }
    if (/^AUTH/i.test(line) && code === 235) authenticated = true;
    if (/^AUTH/i.test(line)) {
      let step = code;
      for (let i = 0; step === 334 && i < 3; i++) {
        c.write(`${chance(0.5) ? junk(40) : "*"}\r\n`);
        const r = await c.reply();
        if (r === undefined) return hang("an AUTH continuation");
        step = r;
      }
    }
    if (/^STARTTLS/i.test(line) && code === 220) {
      if (chance(0.5)) await c.upgrade();
      else {
        // Not a handshake: the server's TLS layer may wait for the rest of a "record" until its
        // handshake timeout, so nothing is expected; the connection is dropped.
        c.write(`${junk(200, true)}\r\n`);
        break;
      }
    }
    if (/^DATA/i.test(line) && code === 354) {
      let body = "";
      const lines = Math.floor(rand() * 40);
      for (let i = 0; i < lines; i++) {
        body += pick(["Subject: fuzz", ".", "..", "x".repeat(100), junk(80), `${junk(20)}\r${junk(5)}`, `${junk(20)}\n${junk(5)}`, "\0"]) +
          "\r\n";
      }
      c.write(`${body}.\r\n`);
      stats.messages++;
      if ((await c.reply()) === undefined) return hang("the end of DATA");
      break; // a "." line may have ended the data early; what followed went as commands: start afresh
    }
  }
  c.sock.destroy();
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "qpfuzz-"));
  const fixtures = join(ROOT, "tests/fixtures/tls");
  writeFileSync(join(dir, "me"), "mx.example.org\n");
  writeFileSync(join(dir, "rcpthosts"), "example.org\n");
  writeFileSync(join(dir, "flat_auth_pw"), "user@example.org:secret\n");
  writeFileSync(join(dir, "timeout"), "5\n");
  writeFileSync(join(dir, "logging"), "");
  writeFileSync(
    join(dir, "plugins"),
    `tls ${fixtures}/server.crt ${fixtures}/server.key\nrelay\nauth/auth_flat_file\ndont_require_anglebrackets\nrcpt_ok\nqueue/discard\n`,
  );
  const port = await new Promise<number>((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
  const server: ChildProcess = spawn(join(ROOT, "dist/qpsmtpd"), [
    "--config",
    dir,
    "-l",
    "127.0.0.1",
    "-p",
    String(port),
    "-c",
    "200",
    "-m",
    "200",
  ], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  server.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  let exited: number | null | undefined;
  server.on("exit", (code, signal) => (exited = code ?? (signal ? -1 : 0)));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) =>
      net.connect(port, "127.0.0.1").once("connect", function (this: net.Socket) {
        this.destroy();
        r(true);
      }).once("error", () => r(false))
    );
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const deadline = Date.now() + SECONDS * 1000;
  let peak = 0;
  const watch = setInterval(() => {
    peak = Math.max(peak, rssKb(server.pid!));
    if (peak > MAX_RSS_KB) failures.push({ kind: "memory", detail: `resident size ${peak} KiB over ${MAX_RSS_KB} KiB` });
  }, 500);
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (Date.now() < deadline && exited === undefined && failures.length < 20) await session(port, deadline);
  }));
  clearInterval(watch);
  if (exited !== undefined) failures.push({ kind: "crash", detail: `the server exited (${exited}); its last words:\n${stderr}` });
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
  const summary =
    `fuzz: ${SECONDS} s, seed ${firstSeed}: ${stats.sessions} sessions, ${stats.commands} commands, ${stats.messages} messages, peak RSS ${
      Math.round(peak / 1024)
    } MiB`;
  process.stdout.write(`${summary}\n`);
  for (const f of failures.slice(0, 20)) process.stdout.write(`FAIL ${f.kind}: ${f.detail}\n`);
  process.stdout.write(failures.length ? `fuzz: ${failures.length} failure(s); replay with --seed ${firstSeed}\n` : "fuzz: OK\n");
  return failures.length ? 1 : 0;
}

process.exit(await main());
