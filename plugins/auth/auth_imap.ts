/**
 * auth/auth_imap: checks AUTH PLAIN and LOGIN by logging in to an IMAP server (RFC 3501 LOGIN),
 * in clear, over IMAPS, or after STARTTLS, as qpsmtpd's auth_imap and Haraka's auth_proxy do.
 *
 * Hooks: auth-plain, auth-login. Config files: none (`tls_ca` is read at start-up). Notes: none.
 * Arguments: `HOST [PORT]` (qpsmtpd's; default 127.0.0.1 143), then key/value pairs:
 * `tls none|imaps|starttls` (`imaps` when PORT is 993, else `none`); `tls_ca FILE` (PEM CAs to
 * trust besides the system's, e.g. a self-signed server's certificate; relative to the config
 * directory); `tls_verify 0` turns certificate checking off (don't); `imap_timeout SECONDS`
 * (10): the time limit for connecting and for each answer. Keep it below `plugin_timeout` (30):
 * a call cut off there counts as declined, which ends in 535. Any other word (but the engine's
 * `timeout` and `loglevel`) stops start-up.
 * With `tls starttls` the server must take STARTTLS before the password goes out; a server that
 * sends anything after its STARTTLS answer (a response injected before the handshake) is not
 * believed.
 * The user name and password go as quoted strings, or as literals when they hold 8-bit or
 * control characters. When the server's greeting lists ID, the SMTP client's address goes first
 * (`ID ("x-originating-ip" ...)`): Dovecot, with qpsmtpd's address in `login_trusted_networks`,
 * then logs it and applies its brute-force penalty to that client instead of to every user of
 * qpsmtpd.
 * Replies: OK (235) on the server's `OK`; DENY (535 5.7.8) on `NO` (wrong password, or a
 * permanent response code such as AUTHENTICATIONFAILED); DENYSOFT (454 4.7.0) on `NO
 * [UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]` or `[LIMIT]`, on `BAD`, and when the server cannot
 * answer: down, refusing, silent, closing, a failed TLS handshake or certificate, or
 * LOGINDISABLED. A user name or password with a NUL (IMAP cannot carry it) or with bytes that
 * were not UTF-8 (the core hands them on as U+FFFD, not as sent) is refused (DENY) without
 * asking. Passwords are never logged.
 * Failure policy: closed. OK only when the IMAP server said yes; when it cannot answer, 454 (the
 * client retries later), never 235 and never 535.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { isAbsolute, join } from "node:path";
import * as tls from "node:tls";
import {
  type Check,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LineReader,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  OK,
  parsePluginArgs,
  type Result,
} from "qpsmtpd";

type TlsMode = "none" | "imaps" | "starttls";

interface Data {
  host: string;
  port: number;
  tls: TlsMode;
  /** For node:tls: the CAs and whether to check the certificate. */
  tlsOptions: tls.ConnectionOptions;
  timeoutMs: number;
}

export const init: Init<Data> = function (server, ...args) {
  const a = parsePluginArgs("auth/auth_imap", args, {
    values: ["tls", "tls_ca", "tls_verify", "imap_timeout"],
    positional: [0, args.length],
    usage: "HOST [PORT]",
  });
  const [hostWord, portWord, ...extra] = a.positional;
  const host = hostWord ?? "127.0.0.1";
  if (!/^[\w.:-]+$/.test(host)) throw new Error(`auth/auth_imap: bad IMAP server "${host}"`);
  // HOST is a host name (no `_`) or an address, then only a port number: another word is a
  // misspelt key (`imap_timout 5`), not a server or a port.
  let odd = extra[0];
  if (portWord !== undefined && !/^\d+$/.test(portWord)) odd = portWord;
  if (host.includes("_") && net.isIP(host) === 0) odd = host;
  if (odd !== undefined) {
    throw new Error(`auth/auth_imap: unknown argument "${odd}" (it takes: HOST [PORT], tls, tls_ca, tls_verify, imap_timeout)`);
  }
  const port = portWord === undefined ? 143 : Number(portWord);
  if (port < 1 || port > 65535) throw new Error(`auth/auth_imap: bad port ${port}`);
  const o = a.values;
  const mode = o["tls"] ?? (port === 993 ? "imaps" : "none");
  if (mode !== "none" && mode !== "imaps" && mode !== "starttls") {
    throw new Error(`auth/auth_imap: tls is none, imaps or starttls, not "${mode}"`);
  }
  const seconds = o["imap_timeout"] ?? "10";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`auth/auth_imap: bad imap_timeout "${seconds}"`);
  const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: o["tls_verify"] !== "0" };
  if (net.isIP(host) === 0) tlsOptions.servername = host;
  const caFile = o["tls_ca"];
  if (caFile !== undefined) {
    const path = isAbsolute(caFile) ? caFile : server.config_path(caFile) ?? join(server.config_dir, caFile);
    // The given CAs are trusted besides the system's, so a public certificate still verifies.
    tlsOptions.ca = [...tls.rootCertificates, fs.readFileSync(path, "utf8")];
  }
  this.data.host = host;
  this.data.port = port;
  this.data.tls = mode;
  this.data.tlsOptions = tlsOptions;
  this.data.timeoutMs = Number(seconds) * 1000;
};

/** CRLF lines from the IMAP server, each within the time limit (attached once connected). */
function imapLines(timeoutMs: number): LineReader {
  return new LineReader({ timeoutMs, peer: "the IMAP server", ending: "\r\n" });
}

/** Connects (in TLS for imaps) and settles once the socket is ready; honours the time limit and the signal. */
function open(d: Data, signal: AbortSignal, secure: boolean, over?: net.Socket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = secure
      ? tls.connect({ ...d.tlsOptions, ...(over ? { socket: over } : { host: d.host, port: d.port }) })
      : net.connect(d.port, d.host);
    const onAbort = (): void => void sock.destroy(new Error("the plugin's time limit passed"));
    signal.addEventListener("abort", onAbort, { once: true });
    sock.once("close", () => signal.removeEventListener("abort", onAbort));
    const timer = setTimeout(() => sock.destroy(new Error("connect timed out")), d.timeoutMs);
    sock.once(secure ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once("error", (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

type Answer = { status: string; text: string };

/** A tagged answer line: `TAG OK|NO|BAD text`. */
function parseTagged(line: string): Answer {
  const m = /^\S+ (OK|NO|BAD)\b ?(.*)$/i.exec(line);
  if (!m) throw new Error(`unexpected answer: ${line.slice(0, 200)}`);
  return { status: m[1]!.toUpperCase(), text: m[2]! };
}

/** Reads to the tagged answer of `tag`. Untagged lines are skipped. */
async function tagged(r: LineReader, tag: string): Promise<Answer> {
  for (let n = 0; n < 10_000; n++) {
    const line = await r.next();
    if (line.startsWith(`${tag} `)) return parseTagged(line);
  }
  throw new Error("no tagged answer");
}

/** Connects, reads the greeting and does STARTTLS when configured; the lines reader and the greeting. */
async function session(d: Data, signal: AbortSignal): Promise<{ r: LineReader; greeting: string }> {
  const r = imapLines(d.timeoutMs);
  const sock = await open(d, signal, d.tls === "imaps");
  r.attach(sock);
  try {
    const greeting = await r.next();
    if (!/^\* OK\b/i.test(greeting)) throw new Error(`greeting ${greeting.slice(0, 200)}`);
    if (d.tls !== "starttls") return { r, greeting };
    r.write("a0 STARTTLS\r\n");
    const a = await tagged(r, "a0");
    if (a.status !== "OK") throw new Error(`STARTTLS refused: ${a.status} ${a.text}`);
    const upgraded = imapLines(d.timeoutMs);
    upgraded.attach(await open(d, signal, true, r.detach()));
    return { r: upgraded, greeting: "" };
  } catch (e) {
    sock.destroy();
    throw e;
  }
}

/** An IMAP string: quoted when it is plain 7-bit text, else a literal (UTF-8 bytes). */
function imapString(s: string): { quoted: string } | { literal: Buffer } {
  // deno-lint-ignore no-control-regex -- what a quoted string may hold (no NUL, CR, LF, 8-bit)
  if (/^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(s)) return { quoted: `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"` };
  return { literal: Buffer.from(s, "utf8") };
}

/** Sends `a1 LOGIN user pass`, waiting for the server's go-ahead before each literal. */
async function login(r: LineReader, user: string, pass: string): Promise<Answer> {
  let line = "a1 LOGIN";
  for (const arg of [imapString(user), imapString(pass)]) {
    if ("quoted" in arg) {
      line += ` ${arg.quoted}`;
      continue;
    }
    r.write(`${line} {${arg.literal.length}}\r\n`);
    for (;;) {
      const go = await r.next();
      if (go.startsWith("+")) break;
      if (go.startsWith("a1 ")) return parseTagged(go);
    }
    r.write(arg.literal);
    line = "";
  }
  r.write(`${line}\r\n`);
  return tagged(r, "a1");
}

/**
 * RFC 2971 ID with the SMTP client's address: a server that trusts us (Dovecot's
 * `login_trusted_networks`) then logs it and keys its brute-force penalty on it, not on us. Any
 * answer will do: a server that does not know ID only says BAD.
 */
async function sendClientIp(r: LineReader, ip: string): Promise<void> {
  if (!/^[\d.:a-fA-F]+$/.test(ip)) return;
  r.write(`a0 ID ("x-originating-ip" "${ip}")\r\n`);
  await tagged(r, "a0");
}

/** NO with one of these response codes is not about the password (RFC 5530). */
const TEMPORARY = /^\[(UNAVAILABLE|SERVERBUG|INUSE|LIMIT)\b/i;

/** Why a credential cannot be handed on faithfully, or undefined. */
function unusable(user: string, pass: string): string | undefined {
  if (user.includes("\0") || pass.includes("\0")) return "a NUL byte";
  if (user.includes("\uFFFD") || pass.includes("\uFFFD")) return "bytes that are not UTF-8";
  return undefined;
}

export const hook_auth_plain: Hooks<Data>["auth-plain"] = async function (_txn, _mechanism, user, passClear): Promise<Result> {
  if (passClear === undefined) return DECLINED;
  const bad = unusable(user, passClear);
  if (bad) {
    this.log(LOGWARN, `refusing ${user}: the credentials hold ${bad}`);
    return DENY;
  }
  let r: LineReader | undefined;
  try {
    const s = await session(this.data, this.signal);
    r = s.r;
    if (/\bLOGINDISABLED\b/i.test(s.greeting)) {
      return unavailable(this, "the server refuses LOGIN in clear (LOGINDISABLED): use tls starttls or imaps");
    }
    if (/[[ ]ID[\] ]/.test(s.greeting)) await sendClientIp(r, this.connection.remote_ip);
    const a = await login(r, user, passClear);
    r.write("a2 LOGOUT\r\n");
    if (a.status === "OK") {
      this.log(LOGINFO, `${user} logged in to ${where(this.data)}`);
      return OK;
    }
    if (a.status === "NO" && !TEMPORARY.test(a.text)) {
      this.log(LOGINFO, `${where(this.data)} refused ${user}: ${a.text}`);
      return DENY;
    }
    return unavailable(this, `LOGIN answered ${a.status} ${a.text}`);
  } catch (e) {
    return unavailable(this, (e as Error).message);
  } finally {
    r?.close();
  }
};
export const hook_auth_login = hook_auth_plain;

const where = (d: Data): string =>
  `${d.tls === "imaps" ? "imaps" : "imap"}://${d.host}:${d.port}${d.tls === "starttls" ? " (STARTTLS)" : ""}`;

function unavailable(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `IMAP server ${where(p.data)} cannot answer: ${why}`);
  return DENYSOFT; // the core answers 454 4.7.0
}

/** `qpsmtpd check`: the server greets (and takes STARTTLS when configured) and will take LOGIN. */
export const check: Check<Data> = async function () {
  let r: LineReader | undefined;
  try {
    const s = await session({ ...this.data, timeoutMs: Math.min(this.data.timeoutMs, 10_000) }, this.signal);
    r = s.r;
    r.write("a9 LOGOUT\r\n");
    if (/\bLOGINDISABLED\b/i.test(s.greeting)) return [`the IMAP server ${where(this.data)} refuses LOGIN in clear (LOGINDISABLED)`];
    return [];
  } catch (e) {
    return [`the IMAP server ${where(this.data)} does not answer: ${(e as Error).message}`];
  } finally {
    r?.close();
  }
};
