/**
 * virus/clamdscan: scans each message with ClamAV's daemon, clamd, and refuses or tags viruses.
 *
 * The message (header and body) is streamed from the spool to clamd with `zINSTREAM`, over TCP
 * or a unix socket, so clamd needs no access to our spool. clamd's version (`zVERSION`) names the
 * scanner in the header field.
 *
 * Hooks: data_post.
 * Arguments (qpsmtpd's, as `key value` pairs):
 *  - `clamd_socket PATH` (default `/var/run/clamav/clamd.ctl`, Debian's), or `clamd_port PORT`
 *    with `clamd_host HOST` (default `localhost`): TCP, which wins when both are given;
 *  - `deny_viruses yes|no` (default yes): refuse an infected message; with `no` it is accepted
 *    with `X-Virus-Found: Yes` and `X-Virus-Details: NAME`;
 *  - `defer_on_error yes|no` (default no): see the failure policy;
 *  - `max_size KB` (default 1024): larger messages are not scanned (logged at LOGINFO);
 *  - `scan_all yes|no` (default yes): with `no` only multipart messages are scanned;
 *  - ours: `connect_timeout S` (default 5), `scan_timeout S` (default one second less than the
 *    plugin's time limit, `timeout` or `plugin_timeout`).
 * Header fields: clean mail gets `X-Virus-Found: No` and `X-Virus-Checked: by ClamAV x.y on ME`.
 * Notes: transaction `virus` (the signature's name) and `virus_flag` (`Yes`/`No`), as qpsmtpd's
 * virus plugins; a virus also marks the connection naughty (connection note `naughty`, the reply
 * text) and costs one karma point. A connection already naughty is not scanned.
 * Replies: `552 Virus found: NAME`.
 * Failure policy: clamd down, refusing, answering garbage or silent past the time limit → logged
 * at LOGWARN and the message goes on unscanned (DECLINED), as qpsmtpd; with `defer_on_error yes`
 * it gets `451 4.3.0`. clamd's `INSTREAM size limit exceeded` (its StreamMaxLength is below
 * `max_size`) is not retried: logged at LOGWARN, the message goes on unscanned. clamd sends that
 * answer and closes at once, so the answer is often lost to the connection reset: a stream cut
 * short while clamd still answers PING on a new connection counts as the same refusal.
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import {
  abortReason,
  type BackendTarget,
  backendTimeLimitMs,
  type Check,
  connectBackend,
  DECLINED,
  DENY,
  describeBackend,
  DONE,
  type HookContext,
  type Hooks,
  type Init,
  LOGINFO,
  LOGNOTICE,
  LOGWARN,
  parsePluginArgs,
  parseYesNo,
  type Result,
  type Transaction,
  writeAll,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The virus a scanner found. */
    virus: string;
    /** `Yes` when a scanner found a virus, `No` when it found none. */
    virus_flag: "Yes" | "No";
  }
}

interface Data {
  target: BackendTarget;
  deny: boolean;
  defer: boolean;
  maxBytes: number;
  scanAll: boolean;
  connectMs: number;
  scanMs: number;
  /** clamd's version line, asked once and kept. */
  version?: string;
}

/** The `key value` arguments (the engine reads `timeout` and `loglevel` too). */
const KEYS = [
  "clamd_socket",
  "clamd_host",
  "clamd_port",
  "deny_viruses",
  "defer_on_error",
  "max_size",
  "scan_all",
  "connect_timeout",
  "scan_timeout",
] as const;
/** clamd's answers are one short line; anything longer is not clamd. */
const MAX_ANSWER = 4096;
/** Chunks clamd gets (it takes up to its StreamMaxLength in total). */
const CHUNK = 64 * 1024;

export const init: Init<Data> = function (_server, ...args) {
  const o: Partial<Record<string, string>> = parsePluginArgs("virus/clamdscan", args, { values: KEYS }).values;
  const port = o["clamd_port"];
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new Error(`virus/clamdscan: clamd_port "${port}" is not a port`);
  const socket = o["clamd_socket"] ?? "/var/run/clamav/clamd.ctl";
  if (port === undefined && !/^[\w/.-]+$/.test(socket)) throw new Error(`virus/clamdscan: clamd_socket "${socket}" is not a path`);
  this.data.target = port !== undefined ? { host: o["clamd_host"] ?? "localhost", port: Number(port) } : { path: socket };
  this.data.deny = parseYesNo("virus/clamdscan", "deny_viruses", o["deny_viruses"], true);
  this.data.defer = parseYesNo("virus/clamdscan", "defer_on_error", o["defer_on_error"], false);
  this.data.scanAll = parseYesNo("virus/clamdscan", "scan_all", o["scan_all"], true);
  this.data.maxBytes = (o["max_size"] === undefined ? 1024 : number("max_size", o["max_size"])) * 1024;
  const limit = backendTimeLimitMs(this.timeLimitMs);
  this.data.scanMs = o["scan_timeout"] === undefined ? limit : number("scan_timeout", o["scan_timeout"]) * 1000;
  this.data.connectMs = Math.min(
    this.data.scanMs,
    o["connect_timeout"] === undefined ? 5000 : number("connect_timeout", o["connect_timeout"]) * 1000,
  );
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn): Promise<Result> {
  const d = this.data;
  if (this.connection.notes("naughty")) {
    this.log(LOGINFO, "skip, naughty");
    return DECLINED;
  }
  if (txn.data_size() > d.maxBytes) {
    this.log(LOGINFO, `skip, too big (${txn.data_size()} > ${d.maxBytes} bytes)`);
    return DECLINED;
  }
  if (!d.scanAll && !isMultipart(txn)) {
    this.log(LOGINFO, "skip, not multipart");
    return DECLINED;
  }
  const started = Date.now();
  const deadline = AbortSignal.any([this.signal, AbortSignal.timeout(d.scanMs)]);
  let answer: string;
  try {
    d.version ??= versionName(await ask(d, "zVERSION\0", deadline));
    answer = await ask(d, txn.message_stream(), deadline);
  } catch (e) {
    // clamd cuts a stream past its StreamMaxLength; its answer saying so is often lost to the
    // reset that follows. If clamd still answers PING, that is what happened.
    if (e instanceof StreamCut && (await pong(d, deadline))) {
      this.log(LOGWARN, `skip, clamd refused the size (${txn.data_size()} bytes; its StreamMaxLength is below max_size): ${e.message}`);
      return DECLINED;
    }
    return failed(this, (e as Error).message);
  }
  const took = `${Date.now() - started} ms`;
  if (/size limit exceeded/i.test(answer)) {
    this.log(LOGWARN, `skip, clamd refused the size (${txn.data_size()} bytes; its StreamMaxLength is below max_size): ${answer}`);
    return DECLINED;
  }
  const found = /^stream: (.+) FOUND$/.exec(answer);
  if (found) {
    const name = found[1]!.replace(/[^\w.:/+-]/g, "?");
    txn.notes("virus", name);
    txn.notes("virus_flag", "Yes");
    this.is_naughty(`Virus found: ${name}`);
    this.adjust_karma(-1);
    this.log(LOGNOTICE, `fail, found virus ${name}, ${took}`);
    if (d.deny) return [DENY, `Virus found: ${name}`];
    txn.header()?.add("X-Virus-Found", "Yes", 0);
    txn.header()?.add("X-Virus-Details", name, 0);
    return DECLINED;
  }
  if (answer !== "stream: OK") return failed(this, `clamd answered "${answer.slice(0, 200)}"`);
  txn.notes("virus_flag", "No");
  this.log(LOGINFO, `pass, clean, ${took}`);
  txn.header()?.add("X-Virus-Found", "No", 0);
  txn.header()?.add("X-Virus-Checked", `by ${d.version} on ${this.qp.me}`, 0);
  return DECLINED;
};

/** `qpsmtpd check`: clamd answers zPING. */
export const check: Check<Data> = async function () {
  try {
    const answer = await ask(this.data, "zPING\0", AbortSignal.timeout(this.data.scanMs));
    return answer === "PONG" ? [] : [`clamd at ${describeBackend(this.data.target)} answered PING with "${answer}"`];
  } catch (e) {
    return [`clamd at ${describeBackend(this.data.target)} does not answer: ${(e as Error).message}`];
  }
};

function failed(p: HookContext<Data>, why: string): Result {
  p.log(
    LOGWARN,
    `clamd at ${describeBackend(p.data.target)} failed, ${p.data.defer ? "deferring the message" : "message not scanned"}: ${why}`,
  );
  return p.data.defer ? answer(p, 451, "4.3.0", "Unable to scan for viruses now, try again later") : DECLINED;
}

/** Our own reply and its RFC 3463 status code, which goes first when the client said EHLO. */
function answer(p: HookContext<Data>, code: number, status: string, text: string): Result {
  p.qp.respond_status(code, status, text);
  return DONE;
}

function isMultipart(txn: Transaction): boolean {
  const ct = txn.header()?.get("Content-Type", 0)?.replace(/\s/g, " ") ?? "";
  return /\bmultipart\/.*\bboundary="?([^"]+)/i.test(ct);
}

/** `ClamAV 1.4.6/27000/Sun Nov 29 ...` → `ClamAV 1.4.6`. */
function versionName(v: string): string {
  const m = /^(ClamAV [\w.-]+)/.exec(v);
  return m ? m[1]! : "ClamAV";
}

/**
 * One clamd command on its own connection: a string is sent as is; a message is sent as
 * `zINSTREAM` chunks. Returns clamd's answer without its final NUL.
 */
async function ask(d: Data, what: string | AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<string> {
  const s = await connectBackend(d.target, d.connectMs, signal);
  try {
    const answer = readAnswer(s);
    answer.catch(() => undefined); // awaited below; clamd may answer (size limit) before we finish
    try {
      if (typeof what === "string") await writeAll(s, what);
      else await instream(s, what, signal);
    } catch (e) {
      // clamd stops reading when it refuses (size limit): its answer says why.
      const early = await Promise.race([answer, new Promise<undefined>((r) => setTimeout(r, 100, undefined))]).catch(() => undefined);
      if (early) return early;
      throw e;
    }
    return await answer;
  } finally {
    s.destroy();
  }
}

/** clamd closed the connection while the message was being streamed. */
class StreamCut extends Error {
  constructor(sent: number, cause: Error) {
    super(`clamd closed the connection after ${sent} bytes of the message (${cause.message})`);
  }
}

async function instream(s: net.Socket, message: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
  await writeAll(s, "zINSTREAM\0");
  let sent = 0;
  try {
    for await (const c of message) {
      for (let i = 0; i < c.length; i += CHUNK) {
        const part = c.subarray(i, i + CHUNK);
        const len = new Uint8Array(4);
        new DataView(len.buffer).setUint32(0, part.length);
        await writeAll(s, len);
        await writeAll(s, part);
        sent += part.length;
      }
    }
    await writeAll(s, new Uint8Array(4)); // a zero-length chunk ends the stream
  } catch (e) {
    if (signal.aborted) throw new Error(abortReason(signal));
    throw sent > 0 ? new StreamCut(sent, e as Error) : e;
  }
}

/** Whether clamd answers PING on a new connection (within what is left of the limit). */
async function pong(d: Data, signal: AbortSignal): Promise<boolean> {
  try {
    return (await ask(d, "zPING\0", signal)) === "PONG";
  } catch {
    return false;
  }
}

/** Reads up to the NUL that ends a `z` answer (or the end of the connection). */
function readAnswer(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = (e?: Error) => {
      s.off("data", data).off("end", end).off("close", end).off("error", done);
      const nul = buf.indexOf("\0");
      const text = (nul >= 0 ? buf.slice(0, nul) : buf).trim();
      if (e && text === "") reject(e);
      else if (text === "") reject(new Error("clamd closed the connection without an answer"));
      else resolve(text);
    };
    const data = (c: Buffer) => {
      buf += c.toString("latin1");
      if (buf.includes("\0")) done();
      else if (buf.length > MAX_ANSWER) done(new Error("clamd's answer is too long"));
    };
    const end = () => done();
    s.on("data", data).once("end", end).once("close", end).once("error", done);
  });
}

// --- arguments and limits ---

function number(key: string, v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new Error(`virus/clamdscan: ${key} "${v}" is not a number`);
  return Number(v);
}

// --- the socket ---
