/**
 * ident/p0f: asks a running p0f 3 (passive OS fingerprinting) what it saw of the client's
 * connection, through p0f's API socket, and keeps the answer in the connection note `p0f`, so
 * other plugins can treat Windows desktops differently from mail servers.
 *
 * Start p0f with an API socket the daemon may read: `p0f -i eth0 -s /run/p0f.sock 'tcp dst port 25'`.
 *
 * Hooks: connect (asks p0f without holding the greeting), mail (waits for the answer, so later
 * mail and rcpt plugins see the note), rcpt (refuses blocked systems), data_post (headers).
 * Arguments: `SOCKET` first (the path of p0f's API socket), then `version 3` (the default; p0f 2
 * is not supported: Debian ships p0f 3), `local_ip` (accepted, unused: p0f 3 needs only the
 * client's address), `smite_os REGEX` (karma -1 when the OS genre matches, case-insensitive),
 * `add_headers true|false` (default true: `X-P0F-Genre` and `X-P0F-Link-Type` at the top).
 * `local_ip` is logged at start-up as having no effect; any other word stops start-up.
 * Config files: `p0f_blocked_operating_systems`: genres refused at RCPT with `550 OS Blocked`,
 * each an exact genre (`Windows XP`) or a `/regex/` (case-insensitive); relay clients and
 * whitelisted hosts and senders pass.
 * Notes: connection `p0f`: p0f 3's answer (`os_name`, `os_flavor`, `link_type`, `distance`,
 * `uptime_min`, `first_seen`, …) plus qpsmtpd's p0f-2 names `genre` ("os_name os_flavor"),
 * `link` and `uptime`.
 * Failure policy: fail open. A p0f that is down, refuses or knows nothing of the client leaves
 * no note (logged: an error at LOGERROR, "no match" at LOGINFO); one that does not answer is
 * waited for at MAIL only until the plugin's time limit (`timeout N`, else `plugin_timeout`).
 * p0f reads packets in batches, so a client it has not seen yet is asked about again after
 * 250 ms and 500 ms. `qpsmtpd check` sends p0f a query.
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import {
  type Check,
  type Connection,
  DECLINED,
  DENY,
  type HookContext,
  type Hooks,
  type Init,
  LOGDEBUG,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type PluginContext,
} from "qpsmtpd";

/** p0f 3's answer about a host (p0f's `struct p0f_api_response`), with qpsmtpd's p0f-2 names. */
export interface P0fResult {
  status: number;
  first_seen: number;
  last_seen: number;
  total_conn: number;
  uptime_min: number;
  up_mod_days: number;
  last_nat: number;
  last_chg: number;
  distance: number;
  bad_sw: number;
  os_match_q: number;
  os_name: string;
  os_flavor: string;
  http_name: string;
  http_flavor: string;
  link_type: string;
  language: string;
  /** "os_name os_flavor", as qpsmtpd names it. */
  genre?: string;
  link?: string;
  uptime?: number;
}

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** What p0f knows of the client's system (ident/p0f). */
    p0f: P0fResult;
    /** The client is exempt from ident/p0f's OS blocking. */
    p0f_exclude: boolean;
  }
}

interface Data {
  socket: string;
  smite?: RegExp;
  headers: boolean;
  blocked: string[];
  blockedRe: RegExp[];
}

const QUERY_MAGIC = 0x50304601;
const RESP_MAGIC = 0x50304602;
const STATUS_BADQUERY = 0x00;
const STATUS_OK = 0x10;
const STATUS_NOMATCH = 0x20;
const RESPONSE_SIZE = 232;
/** p0f hands packets over in batches (pcap's 250 ms buffer): ask again after these delays. */
const RETRY_MS = [250, 500];

export const init: Init<Data> = function (server, ...args) {
  const a = parsePluginArgs("ident/p0f", args, {
    values: ["version", "local_ip", "smite_os", "add_headers"],
    positional: [0, 1],
    usage: "SOCKET",
  });
  const socket = a.positional[0];
  if (!socket) throw new Error("ident/p0f needs the path of p0f's API socket as its first argument");
  const opt = a.values;
  if (opt.local_ip !== undefined) this.log(LOGWARN, `local_ip ${opt.local_ip} has no effect: p0f 3 needs only the client's address`);
  if ((opt["version"] ?? "3") !== "3") throw new Error("ident/p0f: only p0f 3's API is supported (version 3)");
  const blocked: string[] = [];
  const blockedRe: RegExp[] = [];
  for (const l of server.config_all("p0f_blocked_operating_systems")) {
    const m = /^\/(.*)\/$/.exec(l);
    if (m) blockedRe.push(new RegExp(m[1]!, "i"));
    else blocked.push(l);
  }
  Object.assign(
    this.data,
    {
      socket,
      headers: !/false/i.test(opt["add_headers"] ?? "true"),
      blocked,
      blockedRe,
      ...(opt["smite_os"] ? { smite: new RegExp(opt["smite_os"], "i") } : {}),
    } satisfies Data,
  );
};

/** p0f 3's query for an address: magic, address type, 16 address bytes (host byte order magic). */
export function p0fQuery(ip: string): Buffer | undefined {
  const q = Buffer.alloc(21);
  q.writeUInt32LE(QUERY_MAGIC, 0);
  if (net.isIPv4(ip)) {
    q[4] = 4;
    ip.split(".").forEach((o, i) => (q[5 + i] = Number(o)));
    return q;
  }
  if (!net.isIPv6(ip)) return undefined;
  q[4] = 6;
  const [head = "", tail = ""] = ip.includes("::") ? ip.split("::") : [ip, ""];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => q.writeUInt16BE(parseInt(g, 16), 5 + i * 2));
  return q;
}

const cstr = (b: Buffer, at: number) => {
  const s = b.subarray(at, at + 32);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? 32 : end).toString("latin1");
};

/** Decodes p0f 3's 232-byte answer; throws on a wrong magic. */
export function parseP0fResponse(b: Buffer): P0fResult {
  if (b.length < RESPONSE_SIZE || b.readUInt32LE(0) !== RESP_MAGIC) throw new Error("bad response magic");
  const u = (i: number) => b.readUInt32LE(4 + i * 4);
  return {
    status: u(0),
    first_seen: u(1),
    last_seen: u(2),
    total_conn: u(3),
    uptime_min: u(4),
    up_mod_days: u(5),
    last_nat: u(6),
    last_chg: u(7),
    distance: b.readInt16LE(36),
    bad_sw: b[38]!,
    os_match_q: b[39]!,
    os_name: cstr(b, 40),
    os_flavor: cstr(b, 72),
    http_name: cstr(b, 104),
    http_flavor: cstr(b, 136),
    link_type: cstr(b, 168),
    language: cstr(b, 200),
  };
}

/** One query on p0f's socket; resolves with the raw answer. */
function ask(path: string, query: Buffer, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const sock = net.createConnection({ path });
    const done = (e?: Error) => {
      signal.removeEventListener("abort", onAbort);
      sock.destroy();
      if (e) reject(e);
      else resolve(Buffer.concat(chunks));
    };
    const onAbort = () => done(new Error("p0f did not answer in time"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort);
    sock.on("connect", () => sock.write(query));
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= RESPONSE_SIZE) done();
    });
    sock.on("error", (e) => done(e));
    sock.on("end", () => done(got >= RESPONSE_SIZE ? undefined : new Error(`p0f closed after ${got} bytes`)));
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/** Asks p0f about the client, again after a short wait while p0f has not seen it yet. */
async function lookup(p: PluginContext<Data>, ip: string, signal: AbortSignal): Promise<P0fResult | undefined> {
  const query = p0fQuery(ip);
  if (!query) return undefined;
  for (let attempt = 0;; attempt++) {
    const r = parseP0fResponse(await ask(p.data.socket, query, signal));
    if (r.status === STATUS_OK) return r;
    if (r.status === STATUS_BADQUERY) throw new Error("p0f said: bad query");
    if (r.status !== STATUS_NOMATCH || attempt >= RETRY_MS.length || signal.aborted) return undefined;
    await sleep(RETRY_MS[attempt]!, signal);
  }
}

/** Lookups under way, by connection; each can be stopped when its connection ends. */
const pending = new WeakMap<Connection, { result: Promise<void>; stop: AbortController }>();

export const hook_connect: Hooks<Data>["connect"] = function () {
  const c = this.connection;
  const stop = new AbortController();
  const result = lookup(this, c.remote_ip, stop.signal).then((r) => {
    if (!r) return this.log(LOGINFO, "skip, no match");
    if (r.os_name) Object.assign(r, { genre: `${r.os_name} ${r.os_flavor}`.trim(), link: r.link_type, uptime: r.uptime_min });
    if (r.genre && this.data.smite?.test(r.genre)) this.adjust_karma(-1);
    c.notes("p0f", r);
    this.log(LOGINFO, `${r.os_name} ${r.os_flavor}`.trim() || "unknown system");
    this.log(LOGDEBUG, JSON.stringify(r));
  }, (e: Error) => this.log(LOGERROR, `skip, ${stop.signal.aborted ? "stopped" : e.message}`));
  pending.set(c, { result, stop });
  return DECLINED;
};

/** Waits for this connection's lookup, no longer than the calling hook may take. */
async function settled(p: HookContext<Data>): Promise<void> {
  const job = pending.get(p.connection);
  if (!job) return;
  const onAbort = () => job.stop.abort();
  p.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await job.result;
  } finally {
    p.signal.removeEventListener("abort", onAbort);
    pending.delete(p.connection);
  }
}

export const hook_mail: Hooks<Data>["mail"] = async function () {
  await settled(this);
  return DECLINED;
};

function blocked(p: HookContext<Data>, genre: string): boolean {
  return p.data.blocked.includes(genre) || p.data.blockedRe.some((re) => re.test(genre));
}

export const hook_rcpt: Hooks<Data>["rcpt"] = async function () {
  if (this.data.blocked.length === 0 && this.data.blockedRe.length === 0) return DECLINED;
  await settled(this);
  const genre = this.connection.notes("p0f")?.genre;
  if (!genre) return DECLINED;
  let exclude = this.connection.notes("p0f_exclude");
  if (exclude === undefined) exclude = this.connection.notes("p0f_exclude", this.is_immune());
  return !exclude && blocked(this, genre) ? [DENY, "OS Blocked"] : DECLINED;
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn) {
  await settled(this);
  const r = this.connection.notes("p0f");
  const header = txn.header();
  if (!this.data.headers || !r || !header) return DECLINED;
  for (const [tag, value] of [["X-P0F-Genre", r.genre], ["X-P0F-Link-Type", r.link_type]] as const) {
    if (!value) continue;
    header.delete(tag);
    header.add(tag, value, 0);
  }
  return DECLINED;
};

export const hook_disconnect: Hooks<Data>["disconnect"] = function () {
  pending.get(this.connection)?.stop.abort();
  return DECLINED;
};

export const check: Check<Data> = async function () {
  try {
    parseP0fResponse(await ask(this.data.socket, p0fQuery("127.0.0.1")!, this.signal));
    return [];
  } catch (e) {
    return [`p0f's API socket ${this.data.socket} does not answer: ${(e as Error).message}`];
  }
};
