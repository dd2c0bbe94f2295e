/**
 * rspamd: scans each message with rspamd over its HTTP protocol (`POST /checkv2`) and carries out
 * rspamd's action. Not in qpsmtpd's bundle; Haraka's rspamd plugin is the model for names and
 * defaults.
 *
 * The message (header with our Received, then the body) is streamed from the spool as the
 * request body; the envelope and the connection go as request headers: `IP`, `Helo`, `Hostname`
 * (the verified client name, when there is one), `From`, `Rcpt`, `Deliver-To` (one recipient),
 * `Queue-Id`, `User` (AUTH), `TLS-Cipher`, `MTA-Name`.
 *
 * Hooks: data_post.
 * Arguments (`key value` pairs):
 *  - `host HOST` (default `localhost`), `port PORT` (default 11333): rspamd's normal worker;
 *  - `reject yes|no` (default yes): action `reject` → `550 5.7.1` with rspamd's `smtp_message`
 *    or `Detected as spam`; `reject_authenticated yes|no` (default no): the same for AUTH users;
 *  - `soft_reject yes|no` (default yes): action `soft reject` → `451 4.7.1` (`Deferred by policy`);
 *  - `rewrite_subject yes|no` (default yes): action `rewrite subject` → Subject from rspamd's
 *    `subject` (`%s` is the old one), else `[SPAM] %s`;
 *  - `milter_headers yes|no` (default yes): rspamd's `milter.remove_headers` and
 *    `milter.add_headers` are applied (action `add header` adds `X-Spam: Yes` as well);
 *  - `add_headers always|sometimes|never` (default always; `sometimes` = only for action
 *    `add header`): `X-Rspamd-Score`, `X-Rspamd-Bar` and `X-Rspamd-Report`;
 *  - `relayclient skip`: relay clients are not scanned (whitelisted hosts and senders never are);
 *  - `defer_on_error yes|no` (default no): see the failure policy;
 *  - `scan_timeout S` (default one second less than the plugin's time limit, `timeout` or
 *    `plugin_timeout`, so this plugin's failure policy decides, not the engine's).
 * The `greylist` action is only noted (rspamd's greylisting needs its own Redis; use the
 * greylisting plugin). `no action` changes nothing but the headers.
 * Notes: transaction `rspamd` ({ action, score, required_score, symbols }); karma: -1 when
 * rspamd asks for anything but `no action` or `greylist`.
 * Failure policy (Haraka's): rspamd down, refusing (an HTTP error), answering garbage or silent
 * past the time limit → logged at LOGWARN and the message goes on unscanned (DECLINED); with
 * `defer_on_error yes` it gets `451 4.3.0`. The answer is read with a bound (1 MiB) and checked.
 */
import {
  abortReason,
  backendTimeLimitMs,
  type Check,
  DECLINED,
  DONE,
  type Header,
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
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** rspamd's verdict: its action, score, the score its action needed, and the symbols that scored. */
    rspamd: { action: string; score: number; required_score: number; symbols: Record<string, number> };
  }
}

interface Data {
  base: string;
  reject: boolean;
  rejectAuth: boolean;
  softReject: boolean;
  rewriteSubject: boolean;
  milterHeaders: boolean;
  addHeaders: "always" | "sometimes" | "never";
  skipRelay: boolean;
  defer: boolean;
  scanMs: number;
}

/** What rspamd answered, checked. */
interface Answer {
  action: string;
  score: number;
  required_score: number;
  symbols: Record<string, number>;
  smtp_message?: string;
  subject?: string;
  milter?: { add: Array<[string, string, number | undefined]>; remove: Array<[string, number]> };
}

/** The `key value` arguments (the engine reads `timeout` and `loglevel` too). */
const KEYS = [
  "host",
  "port",
  "reject",
  "reject_authenticated",
  "soft_reject",
  "rewrite_subject",
  "milter_headers",
  "add_headers",
  "relayclient",
  "defer_on_error",
  "scan_timeout",
] as const;
const ACTIONS = new Set(["no action", "greylist", "add header", "rewrite subject", "soft reject", "reject"]);
const MAX_ANSWER = 1024 * 1024;
const FIELD_NAME = /^[!-9;-~]+$/;

export const init: Init<Data> = function (_server, ...args) {
  const o: Partial<Record<string, string>> = parsePluginArgs("rspamd", args, { values: KEYS }).values;
  const host = o["host"] ?? "localhost";
  if (!/^([\w.-]+|\[[0-9a-fA-F:.]+\])$/.test(host)) throw new Error(`rspamd: host "${host}" is not a host name or address`);
  const port = o["port"] ?? "11333";
  if (!/^\d{1,5}$/.test(port)) throw new Error(`rspamd: port "${port}" is not a port`);
  this.data.base = `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
  this.data.reject = parseYesNo("rspamd", "reject", o["reject"], true);
  this.data.rejectAuth = parseYesNo("rspamd", "reject_authenticated", o["reject_authenticated"], false);
  this.data.softReject = parseYesNo("rspamd", "soft_reject", o["soft_reject"], true);
  this.data.rewriteSubject = parseYesNo("rspamd", "rewrite_subject", o["rewrite_subject"], true);
  this.data.milterHeaders = parseYesNo("rspamd", "milter_headers", o["milter_headers"], true);
  const add = o["add_headers"] ?? "always";
  if (add !== "always" && add !== "sometimes" && add !== "never") throw new Error(`rspamd: add_headers is always, sometimes or never`);
  this.data.addHeaders = add;
  if (o["relayclient"] !== undefined && o["relayclient"] !== "skip") throw new Error(`rspamd: relayclient takes only "skip"`);
  this.data.skipRelay = o["relayclient"] === "skip";
  this.data.defer = parseYesNo("rspamd", "defer_on_error", o["defer_on_error"], false);
  const scan = o["scan_timeout"];
  if (scan !== undefined && !/^\d+(\.\d+)?$/.test(scan)) throw new Error(`rspamd: scan_timeout "${scan}" is not a number`);
  this.data.scanMs = scan === undefined ? backendTimeLimitMs(this.timeLimitMs) : Number(scan) * 1000;
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn): Promise<Result> {
  const d = this.data;
  if (this.connection.relay_client() ? d.skipRelay : this.is_immune()) {
    this.log(LOGINFO, "skip, relay client or whitelisted");
    return DECLINED;
  }
  const started = Date.now();
  let a: Answer;
  try {
    a = await scan(this, txn);
  } catch (e) {
    return failed(this, (e as Error).message);
  }
  txn.notes("rspamd", { action: a.action, score: a.score, required_score: a.required_score, symbols: a.symbols });
  this.log(LOGINFO, `${a.action}, score ${a.score} / ${a.required_score}, ${Date.now() - started} ms`);
  if (a.action !== "no action" && a.action !== "greylist") this.adjust_karma(-1);
  if (a.action === "reject" && d.reject && (d.rejectAuth || !this.qp.authenticated())) {
    return answer(this, 550, "5.7.1", a.smtp_message ?? "Detected as spam");
  }
  if (a.action === "soft reject" && d.softReject) return answer(this, 451, "4.7.1", a.smtp_message ?? "Deferred by policy");
  const header = txn.header();
  if (!header) return DECLINED;
  if (a.action === "rewrite subject" && d.rewriteSubject) {
    const old = (header.get("Subject", 0) ?? "").trim();
    header.replace("Subject", safe((a.subject ?? "[SPAM] %s").replace("%s", () => old)));
  }
  if (d.milterHeaders) {
    for (const [name, i] of a.milter?.remove ?? []) removeField(header, name, i);
    for (const [name, value, order] of a.milter?.add ?? []) header.add(name, safe(value), order === 0 ? 0 : undefined);
    if (a.action === "add header") header.replace("X-Spam", "Yes");
  }
  if (d.addHeaders === "always" || (d.addHeaders === "sometimes" && a.action === "add header")) {
    header.replace("X-Rspamd-Score", String(a.score));
    header.replace("X-Rspamd-Bar", bar(a.score));
    const report = Object.entries(a.symbols).filter(([, s]) => s !== 0).map(([n, s]) => `${n}(${s})`).join(" ");
    header.delete("X-Rspamd-Report");
    if (report !== "") header.add("X-Rspamd-Report", safe(fold(report)));
  }
  return DECLINED;
};

/** `qpsmtpd check`: rspamd answers `GET /ping` with `pong`. */
export const check: Check<Data> = async function () {
  try {
    const res = await fetch(`${this.data.base}/ping`, { signal: AbortSignal.timeout(Math.min(this.data.scanMs, 10_000)) });
    const text = (await res.text()).trim();
    return res.ok && text === "pong" ? [] : [`rspamd at ${this.data.base} answered /ping with ${res.status} "${text.slice(0, 100)}"`];
  } catch (e) {
    return [`rspamd at ${this.data.base} does not answer: ${(e as Error).message}`];
  }
};

/**
 * An exact reply code (the engine's data_post codes are 552/452): we answer and return DONE. Its
 * RFC 3463 status code goes first when the client said EHLO.
 */
function answer(p: HookContext<Data>, code: number, status: string, text: string): Result {
  p.qp.respond_status(code, status, text);
  return DONE;
}

function failed(p: HookContext<Data>, why: string): Result {
  p.log(LOGWARN, `rspamd at ${p.data.base} failed, ${p.data.defer ? "deferring the message" : "message not scanned"}: ${why}`);
  return p.data.defer ? answer(p, 451, "4.3.0", "Unable to scan for spam now, try again later") : DECLINED;
}

async function scan(p: HookContext<Data>, txn: Transaction): Promise<Answer> {
  const signal = AbortSignal.any([p.signal, AbortSignal.timeout(p.data.scanMs)]);
  const headers = requestHeaders(p, txn);
  const chunks = txn.message_stream()[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      const next = await chunks.next();
      if (next.done) c.close();
      else c.enqueue(next.value);
    },
    async cancel() {
      await chunks.return?.();
    },
  });
  let res: Response;
  try {
    res = await fetch(`${p.data.base}/checkv2`, { method: "POST", headers, body, signal, duplex: "half" } as RequestInit);
  } catch (e) {
    throw signal.aborted ? new Error(abortReason(signal, `no answer within ${p.data.scanMs} ms`)) : e;
  }
  const text = await readBounded(res, signal, p.data.scanMs);
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  p.log(LOGDEBUG, `answer: ${text.slice(0, 500)}`);
  return parse(text);
}

function requestHeaders(p: HookContext<Data>, txn: Transaction): Headers {
  const c = p.connection;
  const h = new Headers();
  const set = (k: string, v: string | undefined) => {
    // deno-lint-ignore no-control-regex
    if (v !== undefined && v !== "") h.append(k, v.replace(/[\x00-\x1f\x7f]/g, "?"));
  };
  set("IP", c.remote_ip);
  set("Helo", c.hello_host);
  if (c.remote_host !== "Unknown" && !c.remote_host.startsWith("[")) set("Hostname", c.remote_host);
  set("From", txn.sender()?.format() ?? "<>");
  const rcpts = txn.recipients();
  for (const r of rcpts) set("Rcpt", r.format());
  if (rcpts.length === 1) set("Deliver-To", rcpts[0]!.address());
  set("Queue-Id", `${c.id}.${txn.started}`);
  if (p.qp.authenticated()) set("User", p.qp.auth_user);
  if (c.tls) set("TLS-Cipher", c.tls_cipher);
  set("MTA-Name", p.qp.me);
  return h;
}

async function readBounded(res: Response, signal: AbortSignal, ms: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      if (signal.aborted) throw new Error(abortReason(signal, `no answer within ${ms} ms`));
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_ANSWER) throw new Error(`answer larger than ${MAX_ANSWER} bytes`);
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return new TextDecoder().decode(all);
}

/** Checks rspamd's JSON; throws on anything that is not a verdict. */
function parse(text: string): Answer {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`not JSON: ${text.slice(0, 100)}`);
  }
  if (!isObject(j)) throw new Error("the answer is not an object");
  if (typeof j["error"] === "string") throw new Error(`rspamd: ${j["error"].slice(0, 200)}`);
  const { action, score, required_score } = j;
  if (typeof action !== "string" || !ACTIONS.has(action)) throw new Error(`unknown action ${JSON.stringify(action)}`);
  if (typeof score !== "number" || typeof required_score !== "number") throw new Error("no score");
  const symbols: Record<string, number> = {};
  if (isObject(j["symbols"])) {
    for (const [k, v] of Object.entries(j["symbols"])) {
      if (isObject(v) && typeof v["score"] === "number" && /^[\w.-]+$/.test(k)) symbols[k] = v["score"];
    }
  }
  const a: Answer = { action, score, required_score, symbols };
  const msgs = j["messages"];
  if (isObject(msgs) && typeof msgs["smtp_message"] === "string") a.smtp_message = oneLine(msgs["smtp_message"]);
  if (typeof j["subject"] === "string") a.subject = oneLine(j["subject"]);
  if (isObject(j["milter"])) a.milter = milter(j["milter"]);
  return a;
}

/** `milter: { add_headers: { name: value | {value, order} | [..] }, remove_headers: { name: index } }`. */
function milter(m: Record<string, unknown>): NonNullable<Answer["milter"]> {
  const out: NonNullable<Answer["milter"]> = { add: [], remove: [] };
  if (isObject(m["remove_headers"])) {
    for (const [name, i] of Object.entries(m["remove_headers"])) {
      if (FIELD_NAME.test(name)) out.remove.push([name, typeof i === "number" && Number.isInteger(i) ? i : 0]);
    }
  }
  if (isObject(m["add_headers"])) {
    for (const [name, v] of Object.entries(m["add_headers"])) {
      if (!FIELD_NAME.test(name)) continue;
      for (const one of Array.isArray(v) ? v : [v]) {
        if (typeof one === "string") out.add.push([name, one, undefined]);
        else if (isObject(one) && typeof one["value"] === "string") {
          out.add.push([name, one["value"], typeof one["order"] === "number" ? one["order"] : undefined]);
        }
      }
    }
  }
  return out;
}

/** rspamd's index: 0 every field of that name, n > 0 the nth, n < 0 the nth from the end. */
function removeField(header: Header, name: string, i: number): void {
  if (i === 0) header.delete(name);
  else if (i > 0) header.delete(name, i - 1);
  else {
    const at = header.count(name) + i;
    if (at >= 0) header.delete(name, at);
  }
}

function bar(score: number): string {
  if (score >= 1) return "+".repeat(Math.min(50, Math.floor(score)));
  if (score <= -1) return "-".repeat(Math.min(50, Math.floor(-score)));
  return "/";
}

/** Folds a long list of words into lines of about 78 characters. */
function fold(s: string): string {
  const out: string[] = [];
  let line = "";
  for (const w of s.split(" ")) {
    if (line !== "" && line.length + w.length > 70) {
      out.push(line);
      line = w;
    } else line = line === "" ? w : `${line} ${w}`;
  }
  out.push(line);
  return out.join("\n\t");
}

/** A header value from rspamd: control characters dropped, a line break only before white space. */
function safe(v: string): string {
  // deno-lint-ignore no-control-regex
  return v.replace(/\r/g, "").replace(/\n(?![ \t])/g, "\n\t").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "").replace(/\n+$/, "");
}

function oneLine(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, 400);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
