/**
 * spamassassin: scores each message with SpamAssassin's `spamd`, adds its X-Spam-* header fields,
 * and may reject or tag spam.
 *
 * The message (an `X-Envelope-From` line, the header with our Received, then the body, CRLF line
 * ends) is streamed from the spool to spamd as a `HEADERS SPAMC/1.5` request, over TCP or a unix
 * socket. spamd answers with the header it would write (it says `SPAMD/1.1` even to a 1.5
 * request); its X-Spam-* fields (X-Spam-Status, X-Spam-Flag, X-Spam-Level, X-Spam-Checker-Version,
 * ...) are copied to the top of our header, except X-Spam-Report and X-Spam-Prev-Subject.
 *
 * Hooks: data_post.
 * Config files: `subject_prefix` (when the argument is not given).
 * Arguments (qpsmtpd's, as `key value` pairs):
 *  - `spamd_socket host:port|/path/to/socket` (default `localhost:783`; a value with `/` is a path);
 *  - `reject N|userprefs` (also `reject_threshold N`): refuse at or above score N, or above spamd's
 *    own required score with `userprefs`; default: never refuse. `reject_type perm|temp|disconnect`
 *    (default perm);
 *  - `munge_subject_threshold N`: above N (and above spamd's required score), prefix the Subject
 *    with `subject_prefix` (default `*** SPAM ***`);
 *  - `headers none`: add no header field, only the note;
 *  - `leave_old_headers drop|rename|keep` (default rename): what happens to the X-Spam-* fields
 *    that came with the message (`rename` makes them X-Old-Spam-*); unlike qpsmtpd, all of them,
 *    not only the names spamd sends back this time;
 *  - `spamd_user NAME` (default the user we run as; `vpopmail` sends the recipient's address
 *    when there is one recipient); a message with several recipients gets `X-Spam-User`;
 *  - `relayclient skip`: relay clients are not scanned (whitelisted hosts and senders never are).
 *    As qpsmtpd's POD says; its code skips relay clients even without the argument;
 *  - `size_limit BYTES` (default 500000): larger messages are not scanned (logged at LOGINFO);
 *  - ours: `defer_on_error yes|no` (default no), `connect_timeout S` (default 5),
 *    `scan_timeout S` (default one second less than the plugin's time limit, `timeout` or
 *    `plugin_timeout`, so this plugin's failure policy decides, not the engine's).
 * Notes: transaction `spamassassin` ({ is_spam, score, required, tests, autolearn, ... }, from
 * X-Spam-Status, as qpsmtpd); karma: -1 for spam, and -1/+1 when spamd autolearned spam/ham.
 * Replies: `552 spam score exceeded threshold` (the `reject_type` code).
 * Failure policy: spamd down, refusing, answering garbage or silent past the time limit → logged
 * at LOGWARN and the message goes on unscanned (DECLINED), as qpsmtpd; with `defer_on_error yes`
 * the message gets `451 4.3.0` so the sender retries. Replies are parsed strictly and read with a
 * bound on memory.
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import { userInfo } from "node:os";
import {
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
  LOGDEBUG,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  parseYesNo,
  type Result,
  type Transaction,
  type TransactionNotes,
  withCrlf,
  writeAll,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** spamd's verdict, from X-Spam-Status: `is_spam` is `Yes` or `No`; other keys as spamd wrote them. */
    spamassassin: { is_spam: "Yes" | "No"; score: number; required: number; [key: string]: string | number | undefined };
  }
}

interface Data {
  target: BackendTarget;
  reject: number | "userprefs" | undefined;
  munge: number | undefined;
  prefix: string | undefined;
  headers: boolean;
  oldHeaders: "drop" | "rename" | "keep";
  user: string;
  skipRelay: boolean;
  sizeLimit: number;
  defer: boolean;
  connectMs: number;
  scanMs: number;
}

/** The `key value` arguments (the engine reads `timeout` and `loglevel` too). */
const KEYS = [
  "spamd_socket",
  "reject",
  "reject_threshold",
  "reject_type",
  "munge_subject_threshold",
  "subject_prefix",
  "headers",
  "leave_old_headers",
  "spamd_user",
  "relayclient",
  "size_limit",
  "defer_on_error",
  "connect_timeout",
  "scan_timeout",
] as const;
/** Bounds on what we keep of spamd's answer: a line, and an X-Spam-* field. */
const MAX_LINE = 64 * 1024;
const MAX_FIELD = 16 * 1024;

export const init: Init<Data> = function (_server, ...args) {
  const o: Partial<Record<string, string>> = parsePluginArgs("spamassassin", args, { values: KEYS }).values;
  this.data.target = parseSocket(o["spamd_socket"]);
  const reject = o["reject"] ?? o["reject_threshold"];
  this.data.reject = reject === undefined || reject === "userprefs" ? reject : number("reject", reject);
  this.data.munge = o["munge_subject_threshold"] === undefined
    ? undefined
    : number("munge_subject_threshold", o["munge_subject_threshold"]);
  this.data.prefix = o["subject_prefix"];
  if (o["headers"] !== undefined && o["headers"] !== "none") throw new Error(`spamassassin: headers takes only "none"`);
  this.data.headers = o["headers"] !== "none";
  const old = (o["leave_old_headers"] ?? "rename").toLowerCase();
  if (old !== "drop" && old !== "rename" && old !== "keep") throw new Error(`spamassassin: leave_old_headers is drop, rename or keep`);
  this.data.oldHeaders = old;
  this.data.user = o["spamd_user"] ?? runningAs();
  if (o["relayclient"] !== undefined && o["relayclient"] !== "skip") throw new Error(`spamassassin: relayclient takes only "skip"`);
  this.data.skipRelay = o["relayclient"] === "skip";
  this.data.sizeLimit = o["size_limit"] === undefined ? 500_000 : number("size_limit", o["size_limit"]);
  this.data.defer = parseYesNo("spamassassin", "defer_on_error", o["defer_on_error"], false);
  const limit = backendTimeLimitMs(this.timeLimitMs);
  this.data.scanMs = o["scan_timeout"] === undefined ? limit : number("scan_timeout", o["scan_timeout"]) * 1000;
  this.data.connectMs = Math.min(
    this.data.scanMs,
    o["connect_timeout"] === undefined ? 5000 : number("connect_timeout", o["connect_timeout"]) * 1000,
  );
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn): Promise<Result> {
  const d = this.data;
  if (this.connection.relay_client() ? d.skipRelay : this.is_immune()) {
    this.log(LOGINFO, "skip, relay client or whitelisted");
    return DECLINED;
  }
  if (txn.data_size() > d.sizeLimit) {
    this.log(LOGINFO, `skip, too large (${txn.data_size()} > ${d.sizeLimit} bytes)`);
    return DECLINED;
  }
  const started = Date.now();
  const user = spamdUser(d.user, txn);
  let answer: SpamdAnswer;
  try {
    answer = await scan(this, txn, user);
  } catch (e) {
    return failed(this, (e as Error).message);
  }
  const result = verdict(answer);
  if (!result) return failed(this, "spamd's answer has no X-Spam-Status and no Spam: line");
  txn.notes("spamassassin", result);
  if (d.headers) writeHeaders(this, txn, answer.fields, user);
  if (result.is_spam === "Yes") this.adjust_karma(-1);
  if (result.autolearn === "ham") this.adjust_karma(1);
  if (result.autolearn === "spam") this.adjust_karma(-1);
  if (d.headers) mungeSubject(this, txn, result);
  const status = `${result.is_spam === "Yes" ? "Spam" : "Ham"}, ${result.score} / ${result.required}`;
  const took = `${Date.now() - started} ms`;
  const threshold = d.reject === "userprefs" ? result.required : d.reject;
  if (threshold === undefined || result.score < threshold) {
    this.log(LOGINFO, `${result.is_spam === "Yes" ? "fail, tolerated" : "pass"}, ${status}, ${took}`);
    return DECLINED;
  }
  this.log(LOGINFO, `fail, ${status} >= ${threshold}, ${took}`);
  return [this.get_reject_type(DENY), "spam score exceeded threshold"];
};

/** `qpsmtpd check`: spamd answers PING. */
export const check: Check<Data> = async function () {
  try {
    const s = await connectBackend(this.data.target, this.data.connectMs, AbortSignal.timeout(this.data.scanMs));
    try {
      s.end("PING SPAMC/1.5\r\n\r\n");
      const first = await firstLine(s);
      return /^SPAMD\/\d+\.\d+ 0 PONG/.test(first) ? [] : [`spamd at ${describeBackend(this.data.target)} answered PING with "${first}"`];
    } finally {
      s.destroy();
    }
  } catch (e) {
    return [`spamd at ${describeBackend(this.data.target)} does not answer: ${(e as Error).message}`];
  }
};

function failed(p: HookContext<Data>, why: string): Result {
  p.log(
    LOGWARN,
    `spamd at ${describeBackend(p.data.target)} failed, ${p.data.defer ? "deferring the message" : "message not scanned"}: ${why}`,
  );
  return p.data.defer ? answer(p, 451, "4.3.0", "Unable to scan for spam now, try again later") : DECLINED;
}

/** Our own reply and its RFC 3463 status code, which goes first when the client said EHLO. */
function answer(p: HookContext<Data>, code: number, status: string, text: string): Result {
  p.qp.respond_status(code, status, text);
  return DONE;
}

interface SpamdAnswer {
  /** From spamd's `Spam: True ; 1000.0 / 5.0` line. */
  spam?: { flag: boolean; score: number; required: number };
  /** The X-Spam-* fields of the header spamd would write, in its order; values unfolded into lines. */
  fields: Array<[string, string]>;
}

/** Streams the message to spamd and reads its answer, within the time limits. */
async function scan(p: HookContext<Data>, txn: Transaction, user: string): Promise<SpamdAnswer> {
  const d = p.data;
  const deadline = AbortSignal.any([p.signal, AbortSignal.timeout(d.scanMs)]);
  const envelope = Buffer.from(`X-Envelope-From: ${txn.sender()?.format() ?? "<>"}\r\n`);
  // spamd wants the length first: one pass to measure (CRLF line ends), one to send.
  let length = envelope.length;
  let last = 10;
  for await (const c of txn.message_stream()) {
    length += crlfLength(c);
    if (c.length > 0) last = c[c.length - 1]!;
  }
  if (last !== 10) length += 2;
  const s = await connectBackend(d.target, d.connectMs, deadline);
  try {
    await writeAll(s, `HEADERS SPAMC/1.5\r\nContent-length: ${length}\r\nUser: ${user}\r\n\r\n`);
    await writeAll(s, envelope);
    for await (const c of withCrlf(txn.message_stream())) await writeAll(s, c);
    if (last !== 10) await writeAll(s, "\r\n");
    s.end();
    p.log(LOGDEBUG, `sent ${length} bytes to spamd as user ${user}`);
    return await readAnswer(s);
  } finally {
    s.destroy();
  }
}

/** Parses `SPAMD/1.1 0 EX_OK`, spamd's header lines, then the X-Spam-* fields of the returned header. */
async function readAnswer(s: net.Socket): Promise<SpamdAnswer> {
  const out: SpamdAnswer = { fields: [] };
  let state: "status" | "spamd" | "header" = "status";
  let field: [string, string] | undefined;
  await readLines(s, (line) => {
    if (state === "status") {
      const m = /^SPAMD\/\d+\.\d+ (\d+) (\S+)/.exec(line);
      if (!m) throw new Error(`not a spamd answer: "${line.slice(0, 200)}"`);
      if (m[1] !== "0") throw new Error(`spamd said "${line.slice(0, 200)}"`);
      state = "spamd";
    } else if (state === "spamd") {
      if (line === "") state = "header";
      const m = /^Spam: (True|False|Yes|No) ; (-?\d+(?:\.\d+)?) \/ (-?\d+(?:\.\d+)?)$/i.exec(line);
      if (m) out.spam = { flag: /^(true|yes)$/i.test(m[1]!), score: Number(m[2]), required: Number(m[3]) };
    } else {
      if (line === "") return true; // the end of the header: the rest is not ours
      if (/^[ \t]/.test(line)) {
        if (field && field[1].length + line.length < MAX_FIELD) field[1] += `\n${clean(line)}`;
        return false;
      }
      const m = /^(X-Spam-[!-9;-~]*):[ \t]*(.*)$/i.exec(line);
      field = m ? [m[1]!, clean(m[2]!).slice(0, MAX_FIELD)] : undefined;
      if (field) out.fields.push(field);
    }
    return false;
  });
  if (state === "status") throw new Error("spamd closed the connection without an answer");
  return out; // without the blank line after the header, what we have is whole fields
}

/** The note, as qpsmtpd's parse_spam_header: `Yes, score=5.2 required=5.0 tests=A,B autolearn=no`. */
function verdict(a: SpamdAnswer): TransactionNotes["spamassassin"] | undefined {
  const status = a.fields.find(([n]) => n.toLowerCase() === "x-spam-status")?.[1];
  // spamd folds the tests list after its commas: unfold before splitting on white space.
  const flat = status?.replace(/,[ \t]*\n[ \t]*/g, ",").replace(/\s+/g, " ");
  const m = flat === undefined ? null : /^(Yes|No),? (.*)$/i.exec(flat);
  if (!m) {
    if (!a.spam) return undefined;
    return { is_spam: a.spam.flag ? "Yes" : "No", score: a.spam.score, required: a.spam.required };
  }
  const r: Record<string, string> = Object.create(null);
  for (const part of m[2]!.split(" ")) {
    const eq = part.indexOf("=");
    if (eq > 0) r[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const score = Number(r["score"] ?? r["hits"] ?? a.spam?.score);
  const required = Number(r["required"] ?? a.spam?.required);
  if (!Number.isFinite(score) || !Number.isFinite(required)) return undefined;
  return { ...r, is_spam: m[1]!.toLowerCase() === "yes" ? "Yes" : "No", score, required };
}

function writeHeaders(p: HookContext<Data>, txn: Transaction, fields: Array<[string, string]>, user: string): void {
  const header = txn.header();
  if (!header) return;
  const n = txn.recipients().length;
  const add: Array<[string, string]> = fields.filter(([name]) => !/^X-Spam-(Report|Prev-Subject)$/i.test(name));
  if (n > 1) add.push(["X-Spam-User", `${user}, ${n} recipients`]);
  // Every X-Spam-* field that came with the message goes (not only those spamd sent this time):
  // a forged `X-Spam-Flag: YES` on ham would otherwise survive.
  for (const name of header.tags().filter((tag) => /^X-Spam-/i.test(tag))) {
    for (const old of p.data.oldHeaders === "keep" ? [] : header.get(name)) {
      if (p.data.oldHeaders === "rename") header.add(name.replace(/^X-/i, "X-Old-"), old, 0);
    }
    if (p.data.oldHeaders !== "keep") header.delete(name);
  }
  // Each at the top, last first, so they read in spamd's order above everything else.
  for (const [name, value] of add.reverse()) header.add(name, value, 0);
}

function mungeSubject(p: HookContext<Data>, txn: Transaction, r: { score: number; required: number }): void {
  const threshold = p.data.munge;
  const header = txn.header();
  if (threshold === undefined || !header || r.score <= threshold || r.score <= r.required) return;
  const prefix = p.data.prefix ?? p.qp.config("subject_prefix") ?? "*** SPAM ***";
  header.replace("Subject", `${prefix} ${(header.get("Subject", 0) ?? "").trim()}`);
}

/** With `spamd_user vpopmail` and one recipient, spamd gets the recipient (per-user preferences). */
function spamdUser(user: string, txn: Transaction): string {
  const rcpts = txn.recipients();
  return user === "vpopmail" && rcpts.length === 1 ? rcpts[0]!.address() : user;
}

function runningAs(): string {
  try {
    return userInfo().username;
  } catch {
    return "nobody";
  }
}

// --- spamd_socket and limits ---

function parseSocket(v: string | undefined): BackendTarget {
  if (v === undefined) return { host: "localhost", port: 783 };
  if (v.includes("/")) return { path: v };
  const m = /^([\w.-]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(v);
  if (!m) throw new Error(`spamassassin: spamd_socket "${v}" is neither host:port nor a path`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

function number(key: string, v: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(v)) throw new Error(`spamassassin: ${key} "${v}" is not a number`);
  return Number(v);
}

// --- the socket ---

/**
 * Hands each line of the socket (without its CRLF or LF) to `onLine` until it returns true or the
 * stream ends; a line longer than MAX_LINE, a socket error or a throw from `onLine` rejects.
 * (Events, not `for await`: the async iterator costs Bun about 2 ms of CPU per exchange.)
 */
function readLines(s: net.Socket, onLine: (line: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const finish = (e?: Error) => {
      s.off("data", data).off("end", end).off("close", end).off("error", finish);
      e ? reject(e) : resolve();
    };
    const data = (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      try {
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).replace(/\r$/, "");
          buf = buf.slice(i + 1);
          if (onLine(line)) return finish();
        }
        if (buf.length > MAX_LINE) finish(new Error("spamd sent a line too long"));
      } catch (e) {
        finish(e as Error);
      }
    };
    const end = () => {
      try {
        if (buf !== "") onLine(buf);
        finish();
      } catch (e) {
        finish(e as Error);
      }
    };
    s.on("data", data).once("end", end).once("close", end).once("error", finish);
  });
}

async function firstLine(s: net.Socket): Promise<string> {
  let first = "(nothing)";
  await readLines(s, (line) => ((first = line), true));
  return first;
}

/** Drops control characters other than tab from a header value spamd sent. */
function clean(v: string): string {
  // deno-lint-ignore no-control-regex
  return v.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "");
}

function crlfLength(c: Uint8Array): number {
  let n = c.length;
  for (const b of c) if (b === 10) n++;
  return n;
}
