/**
 * milter: runs a Sendmail milter (clamav-milter, opendkim, opendmarc, rspamd's proxy, ...) as if
 * it were a plugin, over the milter protocol version 6 (qpsmtpd's plugin spoke only version 2).
 *
 * Each SMTP connection gets its own milter connection. After the option negotiation, every stage
 * the milter asks for is sent as it happens: connect, HELO, MAIL, RCPT, DATA, then at the end of
 * the message the header fields (our Received included), the end of the header, the body (CRLF
 * line ends, chunks of at most 65535 bytes) and the end of the message. Stages the milter turns
 * off (SMFIP_NO*) are not sent; stages it wants no reply for (SMFIP_NR_*) are not waited for;
 * SMFIS_SKIP ends the body early; header values keep their leading space when it asks for that
 * (SMFIP_HDR_LEADSPC). Sendmail's macros go before each stage (`j`, `_`, `{daemon_name}`,
 * `{client_addr}`, `{client_name}`, `{client_port}`, `i`, `{auth_type}`, `{auth_authen}`,
 * `{mail_addr}`, `{rcpt_addr}`, `{tls_version}`, `{cipher}`).
 *
 * Hooks: connect, helo, ehlo, mail, rcpt, data, data_post, reset_transaction, disconnect. Put the
 * line before the plugin that accepts recipients (rcpt_ok): recipients another plugin accepted
 * first reach the milter at DATA, and one it refuses then is dropped from the message.
 * Arguments: `NAME SOCKET` as qpsmtpd (`milter clamav 127.0.0.1:7357`, `milter dkim 8891` for
 * localhost), where SOCKET is `[host:]port`, a unix socket path, or Sendmail's `inet:port@host`
 * / `unix:/path`; then ours as `key value` pairs: `defer_on_error yes|no` (default no),
 * `connect_timeout S` (connecting and the option negotiation; default 5), `scan_timeout S` (how
 * long we wait for each answer; a progress packet starts a new wait, up to the plugin's time
 * limit; default one second less than that limit, `timeout` or `plugin_timeout`).
 * Replies (each stage's answer):
 *  - continue → on to the next plugin; accept → no more milter stages for the connection
 *    (connect, HELO) or the message;
 *  - reject → `550 Command rejected` (at connect, the connection closes); tempfail → `450 Try
 *    again later` (`451` for the message); our texts get their enhanced status codes after EHLO;
 *  - replycode → the milter's own code and text (at connect and HELO the engine's 550 or 450
 *    with its text; a 421 closes the connection);
 *  - discard → the message is accepted (`250 2.7.0 Message discarded`) and not delivered.
 * End-of-message actions, as far as the milter asked for them in the negotiation: add, insert
 * and change header fields, change the sender, add and delete recipients, replace the body, and
 * quarantine: the reason goes into the transaction note `milter_quarantine` and the header field
 * `X-Quarantine: NAME: REASON` (we have no hold queue; a delivery agent can act on the field).
 * Notes: transaction `milter_quarantine`, `milter_discard`.
 * Failure policy: a milter down, refusing the negotiation, answering garbage or silent past the
 * time limit → logged at LOGWARN, the milter connection dropped, and the SMTP stage goes on
 * (DECLINED), as Sendmail does without F=T; the next MAIL tries a new milter connection. With
 * `defer_on_error yes` that stage answers 4xx instead (`450` at MAIL and RCPT, `451` for the
 * message); a milter that is down at connect time is tried again, and deferred, at MAIL.
 * Packets from the milter are checked and bounded (1 MiB each; the replaced body at most
 * 10 MiB or four times the message).
 */
import { Buffer } from "node:buffer";
import {
  Address,
  type BackendTarget,
  backendTimeLimitMs,
  type Check,
  type Connection,
  DECLINED,
  DENY,
  DENY_DISCONNECT,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  describeBackend,
  DONE,
  Header,
  type HookContext,
  type Hooks,
  type Init,
  LOGDEBUG,
  LOGINFO,
  LOGNOTICE,
  LOGWARN,
  MilterLink,
  type MilterOptions,
  type MilterPacket,
  type Params,
  parsePluginArgs,
  type Result,
  type Transaction,
  withCrlf,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** Why a milter asked to quarantine the message (`NAME: reason`). */
    milter_quarantine: string;
    /** A milter asked to discard the message: it is accepted and not delivered. */
    milter_discard: string;
  }
}

interface Data {
  label: string;
  target: BackendTarget;
  defer: boolean;
  connectMs: number;
  scanMs: number;
  /** The milter conversation of each SMTP connection. */
  sessions: WeakMap<Connection, PerConnection>;
}

interface PerConnection {
  conv?: Conversation;
  /** The client's HELO, replayed to a new milter connection. */
  helo?: string;
  /** The milter accepted the connection (at connect or HELO): it hears nothing more. */
  accepted?: boolean;
}

// SMFIF_*: what the milter may change at the end of the message. We offer all of them.
const F_ADDHDRS = 0x01, F_CHGBODY = 0x02, F_ADDRCPT = 0x04, F_DELRCPT = 0x08, F_CHGHDRS = 0x10, F_QUARANTINE = 0x20;
const F_CHGFROM = 0x40, F_ADDRCPT_PAR = 0x80, F_SETSYMLIST = 0x100;
const ACTIONS = 0x1ff;
// SMFIP_*: the stages the milter may turn off (NO*) or want no reply for (NR_*).
const P_NOCONNECT = 0x1, P_NOHELO = 0x2, P_NOMAIL = 0x4, P_NORCPT = 0x8, P_NOBODY = 0x10, P_NOHDRS = 0x20, P_NOEOH = 0x40;
const P_NR_HDR = 0x80, P_NODATA = 0x200, P_NR_CONN = 0x1000, P_NR_HELO = 0x2000, P_NR_MAIL = 0x4000;
const P_NR_RCPT = 0x8000, P_NR_DATA = 0x10000, P_NR_EOH = 0x40000, P_NR_BODY = 0x80000, P_HDR_LEADSPC = 0x100000;
/** Every flag above plus NOUNKNOWN/NR_UNKN (we never send unknown commands). */
const PROTOCOL = 0x1ff7ff;
const VERSION = 6;
const BODY_CHUNK = 65535;

/**
 * `replay`: connect and HELO sent again at MAIL to a new milter connection. `late_rcpt`: at DATA,
 * a recipient another plugin accepted before our rcpt hook ran.
 */
type Stage = "connect" | "helo" | "replay" | "mail" | "rcpt" | "late_rcpt" | "data" | "message";
type Reply = MilterPacket;

export const init: Init<Data> = function (_server, ...words) {
  const a = parsePluginArgs("milter", words, {
    values: ["defer_on_error", "connect_timeout", "scan_timeout"],
    positional: [2, 2],
    usage: "NAME SOCKET",
  });
  const [name, socket] = a.positional as [string, string];
  const o = a.values;
  this.data.label = name;
  this.data.target = parseSocket(socket);
  const defer = o["defer_on_error"] ?? "no";
  if (!/^(yes|no|1|0)$/i.test(defer)) throw new Error("milter: defer_on_error is yes or no");
  this.data.defer = /^(yes|1)$/i.test(defer);
  this.data.scanMs = o["scan_timeout"] === undefined ? backendTimeLimitMs(this.timeLimitMs) : seconds("scan_timeout", o["scan_timeout"]);
  this.data.connectMs = Math.min(
    this.data.scanMs,
    o["connect_timeout"] === undefined ? 5000 : seconds("connect_timeout", o["connect_timeout"]),
  );
  this.data.sessions = new WeakMap();
};

export const hook_connect: Hooks<Data>["connect"] = async function () {
  const c = await open(this);
  if (!c) return DECLINED; // tried again at MAIL, where the failure policy applies
  return await stage(this, c, "connect", () => c.connect(this));
};

export const hook_helo: Hooks<Data>["helo"] = async function (_txn, host) {
  const state = stateOf(this);
  state.helo = host;
  const c = state.conv;
  if (!c?.alive || state.accepted) return DECLINED;
  return await stage(this, c, "helo", () => c.sendHelo(this, host));
};

export const hook_ehlo: Hooks<Data>["ehlo"] = hook_helo;

export const hook_mail: Hooks<Data>["mail"] = async function (_txn, sender, params) {
  const state = stateOf(this);
  if (state.accepted) return DECLINED;
  let c = state.conv;
  if (!c?.alive) {
    // A milter that was down (or dropped) gets a new connection for each message.
    c = await open(this);
    if (!c) return failed(this, "mail", "cannot reach the milter");
    const conv = c;
    const replay = [() => conv.connect(this), ...(state.helo === undefined ? [] : [() => conv.sendHelo(this, state.helo!)])];
    for (const send of replay) {
      const r = await stage(this, conv, "replay", send);
      if (r !== DECLINED || !conv.alive || state.accepted) return r;
    }
  }
  const conv = c;
  if (conv.inMessage) await conv.abort();
  conv.startMessage(this);
  return await stage(this, conv, "mail", () => conv.sendMail(this, sender, params));
};

export const hook_rcpt: Hooks<Data>["rcpt"] = async function (_txn, rcpt, params) {
  const c = messageSession(this);
  if (!c) return DECLINED;
  return await stage(this, c, "rcpt", () => c.sendRcpt(this, rcpt, params));
};

export const hook_data: Hooks<Data>["data"] = async function (txn) {
  const c = messageSession(this);
  if (!c) return DECLINED;
  // Recipients a plugin before us accepted never reached our rcpt hook: the milter hears of them
  // now, and a recipient it refuses is dropped from the message.
  for (const rcpt of txn.recipients().filter((r) => !c.hasRcpt(r))) {
    const r = await stage(this, c, "late_rcpt", () => c.sendRcpt(this, rcpt, {}));
    if (!c.alive || c.messageAccepted || txn.notes("milter_discard")) return r;
    if (r !== DECLINED) {
      this.log(LOGINFO, `milter ${this.data.label} refuses ${rcpt.format()} (accepted before it by another plugin): dropped`);
      txn.remove_recipient(rcpt);
    }
  }
  if (txn.recipients().length === 0) return [DENY, "5.7.1 The mail filter refused every recipient"];
  return await stage(this, c, "data", () => c.sendData());
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn) {
  const c = messageSession(this);
  if (c && !txn.notes("milter_discard")) {
    const r = await stage(this, c, "message", () => c.endOfMessage(this, txn));
    if (r !== DECLINED) return r;
  }
  if (txn.notes("milter_discard")) {
    this.log(LOGNOTICE, `discarded at the milter's request (${txn.notes("milter_discard")})`);
    return ours(this, 250, "2.7.0", ["Message discarded"]);
  }
  return DECLINED;
};

export const hook_reset_transaction: Hooks<Data>["reset_transaction"] = async function () {
  const c = this.data.sessions.get(this.connection)?.conv;
  if (c?.alive && c.inMessage) await c.abort();
  return DECLINED;
};

export const hook_disconnect: Hooks<Data>["disconnect"] = function () {
  this.data.sessions.get(this.connection)?.conv?.quit();
  this.data.sessions.delete(this.connection);
  return DECLINED;
};

/** `qpsmtpd check`: the milter accepts a connection and a version 6 negotiation. */
export const check: Check<Data> = async function () {
  const waitMs = Math.min(this.data.scanMs, 10_000);
  try {
    const link = await MilterLink.open(this.data.target, this.data.connectMs, AbortSignal.timeout(waitMs));
    link.limits = { signal: new AbortController().signal, waitMs };
    try {
      const n = await link.negotiate({ version: VERSION, actions: ACTIONS, protocol: PROTOCOL });
      return n.version < 2 ? [`milter ${this.data.label} speaks version ${n.version}`] : [];
    } finally {
      link.close(true);
    }
  } catch (e) {
    return [`milter ${this.data.label} at ${describeBackend(this.data.target)} does not answer: ${(e as Error).message}`];
  }
};

// --- stages and their answers ---

/** The conversation for the current message, or undefined when there is none to have. */
function messageSession(p: HookContext<Data>): Conversation | undefined {
  const state = p.data.sessions.get(p.connection);
  const c = state?.conv;
  if (!c?.alive || state?.accepted || !c.inMessage || c.messageAccepted) return undefined;
  return c;
}

function stateOf(p: HookContext<Data>): PerConnection {
  let s = p.data.sessions.get(p.connection);
  if (!s) p.data.sessions.set(p.connection, s = {});
  return s;
}

async function open(p: HookContext<Data>): Promise<Conversation | undefined> {
  try {
    const link = await MilterLink.open(p.data.target, p.data.connectMs, p.signal);
    // The negotiation is instant for a working milter: a silent one must not hold the greeting
    // for a whole scan_timeout.
    link.limits = { signal: p.signal, waitMs: p.data.connectMs };
    try {
      const n = await link.negotiate({ version: VERSION, actions: ACTIONS, protocol: PROTOCOL });
      const c = new Conversation(link, n, p.data.label);
      stateOf(p).conv = c;
      p.log(
        LOGDEBUG,
        `milter ${p.data.label}: version ${n.version}, actions 0x${n.actions.toString(16)}, protocol 0x${n.protocol.toString(16)}`,
      );
      return c;
    } catch (e) {
      link.close(false);
      throw e;
    }
  } catch (e) {
    p.log(LOGWARN, `milter ${p.data.label} at ${describeBackend(p.data.target)}: ${(e as Error).message}`);
    return undefined;
  }
}

/** Runs one stage's exchange within the time limit and maps the milter's answer to ours. */
async function stage(p: HookContext<Data>, c: Conversation, at: Stage, exchange: () => Promise<Reply | undefined>): Promise<Result> {
  c.limits(p.signal, p.data.scanMs);
  const started = Date.now();
  let r: Reply | undefined;
  try {
    r = await exchange();
  } catch (e) {
    c.close();
    return failed(p, at, (e as Error).message);
  }
  if (at === "message") p.log(LOGINFO, `milter ${p.data.label}: ${r ? describeReply(r) : "done"}, ${Date.now() - started} ms`);
  if (!r) return DECLINED;
  return answer(p, c, at, r);
}

function answer(p: HookContext<Data>, c: Conversation, at: Stage, r: Reply): Result {
  const name = p.data.label;
  switch (r.cmd) {
    case "c":
      return DECLINED;
    case "a":
      if (at === "connect" || at === "helo" || at === "replay") {
        stateOf(p).accepted = true;
        c.quit();
      } else c.messageAccepted = true;
      return DECLINED;
    case "d":
      if (at === "connect" || at === "helo" || at === "replay") {
        stateOf(p).accepted = true;
        c.quit();
        return DECLINED;
      }
      p.transaction.notes("milter_discard", `${name} at ${at}`);
      c.messageAccepted = true;
      return DECLINED;
    case "r":
      p.log(LOGINFO, `milter ${name} rejects at ${at}`);
      return refuse(p, at, 550, ["Command rejected"], "5.7.1");
    case "t":
    case "f":
      p.log(LOGINFO, `milter ${name} tempfails at ${at}`);
      return refuse(p, at, at === "message" || at === "data" ? 451 : 450, ["Try again later"], "4.7.1");
    case "4":
      p.log(LOGINFO, `milter ${name} asks to shut down at ${at}`);
      return refuse(p, at, 421, ["Closing connection"], "4.7.0");
    case "y": {
      const reply = parseReplyCode(r.data);
      if (!reply) {
        c.close();
        return failed(p, at, `bad reply code "${printable(r.data)}"`);
      }
      p.log(LOGINFO, `milter ${name} answers ${reply.code} at ${at}: ${reply.lines.join(" ")}`);
      return refuse(p, at, reply.code, reply.lines);
    }
    default:
      c.close();
      return failed(p, at, `unexpected answer "${r.cmd}"`);
  }
}

/**
 * A 4xx or 5xx for the stage: the engine's code (and status code) where it matches, else we
 * answer ourselves. `status` is given for our own texts (the milter's reply codes carry theirs).
 */
function refuse(p: HookContext<Data>, stage: Stage, code: number, lines: string[], status?: string): Result {
  const at = stage === "replay" ? "mail" : stage;
  const temp = code < 500;
  if (at === "late_rcpt") return [temp ? DENYSOFT : DENY, ...lines]; // the caller drops the recipient
  if (code === 421) return [DENYSOFT_DISCONNECT, ...lines];
  if (at === "connect") return [temp ? DENYSOFT_DISCONNECT : DENY_DISCONNECT, ...lines];
  if (at === "helo" || ((at === "mail" || at === "rcpt") && (code === 550 || code === 450))) return [temp ? DENYSOFT : DENY, ...lines];
  return status ? ours(p, code, status, lines) : (p.qp.respond(code, ...lines), DONE);
}

/** Our own reply, with its RFC 3463 status code when the client said EHLO. */
function ours(p: HookContext<Data>, code: number, status: string, lines: string[]): Result {
  p.qp.respond_status(code, status, ...lines);
  return DONE;
}

function failed(p: HookContext<Data>, at: Stage, why: string): Result {
  const defer = p.data.defer && at !== "connect" && at !== "helo";
  p.log(LOGWARN, `milter ${p.data.label} failed at ${at}, ${defer ? "deferring" : "going on without it"}: ${why}`);
  if (!defer) return DECLINED;
  const text = "Mail filter unavailable, try again later";
  return at === "message" ? ours(p, 451, "4.3.0", [text]) : [DENYSOFT, text];
}

/** `550 5.7.1 text` or multi-line `550-5.7.1 a\r\n550 5.7.1 b`: the code and the lines after it. */
function parseReplyCode(data: Buffer): { code: number; lines: string[] } | undefined {
  const text = data.toString("latin1").replace(/\0+$/, "");
  const lines = text.split(/\r?\n/).filter((l) => l !== "");
  const m = /^([45])(\d\d)(?:[ -]|$)/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const code = Number(m[1]! + m[2]!);
  return { code, lines: lines.map((l) => printable(Buffer.from(l.replace(/^\d{3}[ -]?/, ""), "latin1")).slice(0, 500)) };
}

function describeReply(r: Reply): string {
  const names: Record<string, string> = { a: "accept", c: "continue", d: "discard", r: "reject", t: "tempfail", y: "reply code" };
  return r.cmd === "y" ? `reply code ${printable(r.data)}` : names[r.cmd] ?? `"${r.cmd}"`;
}

// --- one milter connection, as the SMTP session goes ---

class Conversation {
  readonly #link: MilterLink;
  readonly #n: MilterOptions;
  readonly #label: string;
  inMessage = false;
  /** The milter accepted (or discards) the message: no more stages for it. */
  messageAccepted = false;
  #queueId = "";
  #count = 0;
  readonly #rcpts = new Set<string>();

  constructor(link: MilterLink, n: MilterOptions, label: string) {
    this.#link = link;
    this.#n = n;
    this.#label = label;
  }

  get alive(): boolean {
    return this.#link.alive;
  }

  /** The limits of the stage about to run: the hook call's signal, `scan_timeout` for each wait. */
  limits(signal: AbortSignal, waitMs: number): void {
    this.#link.limits = { signal, waitMs };
  }

  #wants(flag: number): boolean {
    return (this.#n.protocol & flag) === 0;
  }

  #may(action: number): boolean {
    return (this.#n.actions & action) !== 0;
  }

  async connect(p: HookContext<Data>): Promise<Reply | undefined> {
    const c = p.connection;
    const host = c.remote_host === "Unknown" ? `[${c.remote_ip}]` : c.remote_host;
    await this.#macros("C", 0, {
      j: p.qp.me,
      _: `${host} [${c.remote_ip}]`,
      "{daemon_name}": "qpsmtpd",
      "{daemon_addr}": c.local_ip,
      "{client_addr}": c.remote_ip,
      "{client_name}": host,
      "{client_port}": String(c.remote_port),
    });
    if (!this.#wants(P_NOCONNECT)) return undefined;
    const port = Buffer.alloc(2);
    port.writeUInt16BE(c.remote_port & 0xffff);
    const family = c.remote_ip.includes(":") ? "6" : "4";
    await this.#link.send("C", Buffer.concat([cstr(host), Buffer.from(family), port, cstr(c.remote_ip)]));
    return this.#reply(P_NR_CONN);
  }

  async sendHelo(p: HookContext<Data>, host: string): Promise<Reply | undefined> {
    const c = p.connection;
    await this.#macros("H", 1, c.tls ? { "{tls_version}": "TLS", "{cipher}": c.tls_cipher ?? "" } : {});
    if (!this.#wants(P_NOHELO)) return undefined;
    await this.#link.send("H", cstr(host));
    return this.#reply(P_NR_HELO);
  }

  /** Whether the milter heard of this recipient in the current message. */
  hasRcpt(a: Address): boolean {
    return this.#rcpts.has(a.address().toLowerCase());
  }

  startMessage(p: HookContext<Data>): void {
    this.inMessage = true;
    this.messageAccepted = false;
    this.#rcpts.clear();
    this.#queueId = `${p.connection.id}.${++this.#count}`;
  }

  async sendMail(p: HookContext<Data>, sender: Address, params: Params): Promise<Reply | undefined> {
    const auth: Record<string, string> = p.qp.authenticated()
      ? { "{auth_type}": p.qp.auth_mechanism ?? "", "{auth_authen}": p.qp.auth_user ?? "" }
      : {};
    await this.#macros("M", 2, { i: this.#queueId, "{mail_addr}": sender.address(), "{mail_host}": sender.host ?? "", ...auth });
    if (!this.#wants(P_NOMAIL)) return undefined;
    await this.#link.send("M", Buffer.concat([cstr(sender.format()), ...esmtp(params)]));
    return this.#reply(P_NR_MAIL);
  }

  async sendRcpt(_p: HookContext<Data>, rcpt: Address, params: Params): Promise<Reply | undefined> {
    this.#rcpts.add(rcpt.address().toLowerCase());
    await this.#macros("R", 3, { i: this.#queueId, "{rcpt_addr}": rcpt.address(), "{rcpt_host}": rcpt.host ?? "" });
    if (!this.#wants(P_NORCPT)) return undefined;
    await this.#link.send("R", Buffer.concat([cstr(rcpt.format()), ...esmtp(params)]));
    return this.#reply(P_NR_RCPT);
  }

  async sendData(): Promise<Reply | undefined> {
    if (this.#n.version < 4 || !this.#wants(P_NODATA)) return undefined;
    await this.#macros("T", 4, { i: this.#queueId });
    await this.#link.send("T");
    return this.#reply(P_NR_DATA);
  }

  /** Header fields, end of header, body, end of message; applies the changes; the final answer. */
  async endOfMessage(p: HookContext<Data>, txn: Transaction): Promise<Reply | undefined> {
    const header = txn.header();
    if (header && this.#wants(P_NOHDRS)) {
      for (const [name, value] of fields(header)) {
        const v = (this.#n.protocol & P_HDR_LEADSPC) ? value : value.replace(/^[ \t]+/, "");
        await this.#link.send("L", Buffer.concat([cstr(name), cstr(v)]));
        const r = await this.#reply(P_NR_HDR);
        if (r && r.cmd !== "c") return r;
      }
    }
    if (this.#wants(P_NOEOH)) {
      await this.#macros("N", 6, { i: this.#queueId });
      await this.#link.send("N");
      const r = await this.#reply(P_NR_EOH);
      if (r && r.cmd !== "c") return r;
    }
    if (this.#wants(P_NOBODY)) {
      const r = await this.#body(txn);
      if (r && r.cmd !== "c" && r.cmd !== "s") return r;
    }
    await this.#macros("E", 5, { i: this.#queueId });
    await this.#link.send("E");
    const changes = new Changes(p, txn, this.#n, this.#label);
    for (;;) {
      const r = await this.#link.read();
      if (r.cmd === "p") continue;
      if (changes.take(r)) continue;
      this.inMessage = false;
      if (r.cmd === "a" || r.cmd === "c") await changes.apply();
      return r;
    }
  }

  async #body(txn: Transaction): Promise<Reply | undefined> {
    let pending: Uint8Array[] = [];
    let size = 0;
    const flush = async (): Promise<Reply | undefined> => {
      if (size === 0) return undefined;
      await this.#link.send("B", Buffer.concat(pending, size));
      pending = [];
      size = 0;
      return this.#reply(P_NR_BODY);
    };
    for await (const wire of withCrlf(txn.body_stream())) {
      for (let at = 0; at < wire.length;) {
        const take = Math.min(BODY_CHUNK - size, wire.length - at);
        pending.push(wire.subarray(at, at + take));
        size += take;
        at += take;
        if (size === BODY_CHUNK) {
          const r = await flush();
          if (r && r.cmd !== "c") return r; // "s" (skip): on to the end of the message
        }
      }
    }
    return flush();
  }

  /** SMFIC_MACRO before a stage: the macros we have, plus any the milter asked for that we know. */
  async #macros(cmd: string, stage: number, values: Record<string, string>): Promise<void> {
    const asked = this.#n.macros.get(stage);
    const names = asked && this.#may(F_SETSYMLIST) ? asked.filter((m) => m in values) : Object.keys(values);
    if (names.length === 0) return;
    await this.#link.send("D", Buffer.concat([Buffer.from(cmd), ...names.flatMap((m) => [cstr(m), cstr(values[m]!)])]));
  }

  async #reply(noReply: number): Promise<Reply | undefined> {
    if (this.#n.protocol & noReply) return undefined;
    for (;;) {
      const r = await this.#link.read();
      if (r.cmd !== "p") return r;
    }
  }

  async abort(): Promise<void> {
    this.inMessage = false;
    this.messageAccepted = false;
    await this.#link.send("A").catch(() => this.close());
  }

  quit(): void {
    this.#link.close(true);
  }

  close(): void {
    this.#link.close(false);
  }
}

/** The end-of-message actions, collected while the milter sends them, applied on accept/continue. */
class Changes {
  readonly #p: HookContext<Data>;
  readonly #txn: Transaction;
  readonly #n: MilterOptions;
  readonly #label: string;
  readonly #ops: Array<() => void> = [];
  #body: Buffer[] | undefined;
  #bodySize = 0;

  constructor(p: HookContext<Data>, txn: Transaction, n: MilterOptions, label: string) {
    this.#p = p;
    this.#txn = txn;
    this.#n = n;
    this.#label = label;
  }

  /** Takes a modification packet; false when `r` is not one (it is the final answer). */
  take(r: Reply): boolean {
    const parts = () => r.data.toString("latin1").split("\0");
    switch (r.cmd) {
      case "h":
        return this.#op(F_ADDHDRS, "add a header field", () => {
          const [name, value] = parts();
          this.#field(name, value, (h, n, v) => h.add(n, v));
        });
      case "i":
        return this.#op(F_ADDHDRS, "insert a header field", () => {
          const index = r.data.readUInt32BE(0);
          const [name, value] = r.data.subarray(4).toString("latin1").split("\0");
          this.#field(name, value, (h, n, v) => this.#txn.header(insertAt(h, index, n, v)));
        });
      case "m":
        return this.#op(F_CHGHDRS, "change a header field", () => {
          const index = r.data.readUInt32BE(0);
          const [name, value] = r.data.subarray(4).toString("latin1").split("\0");
          this.#field(name, value, (h, n, v) => {
            const i = Math.max(1, index) - 1;
            if (v === "") h.delete(n, i);
            else if (i < h.count(n)) h.replace(n, v, i);
            else h.add(n, v);
          });
        });
      case "e":
        return this.#op(F_CHGFROM, "change the sender", () => {
          const [from] = parts();
          const a = from === "<>" ? Address.parse("<>") : Address.parse(from!) ?? Address.parseMailbox(from!);
          if (!a) throw new Error(`bad sender "${from}"`);
          this.#txn.sender(a);
        });
      case "+":
      case "2":
        return this.#op(r.cmd === "+" ? F_ADDRCPT : F_ADDRCPT_PAR, "add a recipient", () => {
          const [to] = parts();
          const a = Address.parse(to!) ?? Address.parseMailbox(to!);
          if (!a || a.isNull()) throw new Error(`bad recipient "${to}"`);
          this.#txn.add_recipient(a);
        });
      case "-":
        return this.#op(F_DELRCPT, "delete a recipient", () => {
          const [to] = parts();
          const a = Address.parse(to!) ?? Address.parseMailbox(to!);
          if (!a) throw new Error(`bad recipient "${to}"`);
          this.#txn.remove_recipient(a);
        });
      case "q":
        return this.#op(F_QUARANTINE, "quarantine", () => {
          const reason = printable(Buffer.from(parts()[0] ?? "", "latin1")).slice(0, 300);
          this.#txn.notes("milter_quarantine", `${this.#label}: ${reason}`);
          this.#txn.header()?.add("X-Quarantine", `${this.#label}: ${reason}`);
          this.#p.log(LOGNOTICE, `milter ${this.#label} quarantines the message: ${reason}`);
        });
      case "b": {
        if (!(this.#n.actions & F_CHGBODY)) throw new Error("the milter replaces the body without having asked to");
        this.#body ??= [];
        this.#bodySize += r.data.length;
        const cap = Math.max(10 * 1024 * 1024, 4 * this.#txn.data_size());
        if (this.#bodySize > cap) throw new Error(`the replacement body is larger than ${cap} bytes`);
        this.#body.push(r.data);
        return true;
      }
      default:
        return false;
    }
  }

  async apply(): Promise<void> {
    for (const op of this.#ops) op();
    if (this.#body) {
      const text = Buffer.concat(this.#body, this.#bodySize).toString("latin1").replace(/\r\n/g, "\n");
      await this.#txn.body_replace(Buffer.from(text, "latin1"));
      this.#p.log(LOGINFO, `milter ${this.#label} replaced the body (${this.#bodySize} bytes)`);
    }
  }

  #op(action: number, what: string, fn: () => void): boolean {
    if (!(this.#n.actions & action)) throw new Error(`the milter tries to ${what} without having asked to`);
    this.#ops.push(() => {
      try {
        fn();
      } catch (e) {
        this.#p.log(LOGWARN, `milter ${this.#label}: cannot ${what}: ${(e as Error).message}`);
      }
    });
    return true;
  }

  /** A header change with a checked name and a value safe to write. */
  #field(name: string | undefined, value: string | undefined, fn: (h: Header, name: string, value: string) => void): void {
    const h = this.#txn.header();
    if (!h || name === undefined || !/^[!-9;-~]+$/.test(name)) throw new Error(`bad header field name "${name}"`);
    let v = (value ?? "").replace(/\r/g, "").replace(/\n(?![ \t])/g, "\n\t");
    // deno-lint-ignore no-control-regex
    v = v.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
    // With HDR_LEADSPC the milter writes the space after the colon itself; Header adds one.
    if (this.#n.protocol & P_HDR_LEADSPC) v = v.replace(/^ /, "");
    fn(h, name, v);
  }
}

/** The header's fields as [name, text after the colon], in order. */
function fields(h: Header): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of h.as_string().split("\n")) {
    if (line === "") continue;
    const last = out[out.length - 1];
    if ((line[0] === " " || line[0] === "\t") && last) last[1] += `\n${line}`;
    else {
      const colon = line.indexOf(":");
      if (colon > 0) out.push([line.slice(0, colon), line.slice(colon + 1)]);
    }
  }
  return out;
}

/** A copy of `h` with `name: value` inserted before field `index` (0 = the top). */
function insertAt(h: Header, index: number, name: string, value: string): Header {
  const all = fields(h).map(([n, v]) => `${n}:${v}\n`);
  all.splice(Math.min(index, all.length), 0, `${name}: ${value}\n`);
  return Header.parse(all.join(""));
}

// --- small helpers ---

function parseSocket(v: string): BackendTarget {
  if (v.startsWith("unix:") || v.startsWith("local:")) return { path: v.slice(v.indexOf(":") + 1) };
  if (v.startsWith("/")) return { path: v };
  const inet = /^inet6?:(\d{1,5})(?:@(.+))?$/.exec(v);
  if (inet) return { host: inet[2] ?? "127.0.0.1", port: Number(inet[1]) };
  const m = /^(?:([\w.-]+|\[[0-9a-fA-F:.]+\]):)?(\d{1,5})$/.exec(v);
  if (!m) throw new Error(`milter: socket "${v}" is not [host:]port, a path, inet:port@host or unix:/path`);
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

function seconds(key: string, v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new Error(`milter: ${key} "${v}" is not a number`);
  return Number(v) * 1000;
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "latin1");
}

/** ESMTP parameters as the milter wants them: `KEY=value`, each NUL-terminated. */
function esmtp(params: Params): Buffer[] {
  return Object.entries(params).map(([k, v]) => cstr(v === undefined ? k.toUpperCase() : `${k.toUpperCase()}=${v}`));
}

function printable(b: Buffer): string {
  return b.toString("latin1").replace(/[^\x20-\x7e]+/g, " ").trim();
}
