/**
 * queue/postfix-queue: hands each message straight to Postfix's cleanup service, as qpsmtpd's
 * postfix-queue (and Postfix's own smtpd and pickup) do: cleanup answers with the new queue id,
 * takes the processing flags, then the envelope and the message as queue-file records (a type
 * byte, a base-128 length, the data), and answers `status` and `reason`. Works with Postfix 3.7
 * (Debian 12), which announces `protocol cleanup_protocol` first.
 *
 * Hooks: queue. Config files: `cleanup_sockets` (below).
 * Arguments (qpsmtpd's): `[SOCKET] [FLAG_...]...`, or `cleanup_socket SOCKET`. SOCKET is the
 * cleanup socket's path (default `/var/spool/postfix/public/cleanup`) or `host:port` for a
 * cleanup service on TCP. As in qpsmtpd, the environment variable `POSTFIXQUEUE` wins over the
 * config file `cleanup_sockets` (sockets tried in order until one connects), which wins over the
 * argument. Flags (Postfix's cleanup_user.h; none by default, as in qpsmtpd): `FLAG_NONE`,
 * `FLAG_BOUNCE`, `FLAG_FILTER` (header/body checks), `FLAG_HOLD`, `FLAG_DISCARD`, `FLAG_BCC_OK`,
 * `FLAG_MAP_OK`, `FLAG_MILTER`, `FLAG_FILTER_ALL`, `FLAG_MASK_EXTERNAL` (what Postfix's smtpd
 * uses: filters, milters, BCC and address maps; probably what you want), `FLAG_MASK_INTERNAL`;
 * an unknown flag stops start-up. `postfix_timeout SECONDS` (30): the time limit for connecting
 * and for each answer. Any other word stops start-up too (qpsmtpd ignored unknown flags, logged).
 * Notes: transaction `postfix-queue-flags` (qpsmtpd's): a plugin that runs earlier may set it to
 * a number; its flags are added to the configured ones (e.g. `FLAG_HOLD` for suspect mail).
 * Records: the arrival time, `rewrite_context=remote` (the message came from outside, as for
 * smtpd), the sender, each recipient, the current header and the body line by line (lines over
 * 1024 bytes in continuation records, bytes as they are), the end markers.
 * Replies: status 0 → `250 Queued! <Message-Id> (Queue-Id: <id>)` (qpsmtpd's). Otherwise cleanup's
 * reason (or Postfix's text for the status) is kept with its class: service unavailable
 * (`DEFER`, e.g. a milter down with `milter_default_action = tempfail`), `BAD`, `WRITE`, `PROXY`
 * → `452`; content rejected (`CONT`, header_checks REJECT), too big (`SIZE`), too many hops,
 * no recipients, not permitted → `552`.
 * Failure policy: the message is accepted only on status 0. Cleanup unreachable (no socket,
 * refused, permission), silent past `postfix_timeout`, hanging up, or answering what this
 * plugin cannot parse → DECLINED (`451`, or the next queue plugin). Permission: the socket is in
 * Postfix's `public/` directory (mode 0710, group postdrop): the user qpsmtpd runs as must be in
 * group `postdrop`.
 */
import * as net from "node:net";
import {
  type BackendTarget,
  type Check,
  connectBackend,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  OK,
  parsePluginArgs,
  type Result,
  type Transaction,
  writeAll,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** queue/postfix-queue: cleanup flags to add for this message (qpsmtpd's note). */
    "postfix-queue-flags": number;
  }
}

/** Postfix's cleanup_user.h. */
const FLAGS: Readonly<Record<string, number>> = {
  FLAG_NONE: 0,
  FLAG_BOUNCE: 1 << 0,
  FLAG_FILTER: 1 << 1,
  FLAG_HOLD: 1 << 2,
  FLAG_DISCARD: 1 << 3,
  FLAG_BCC_OK: 1 << 4,
  FLAG_MAP_OK: 1 << 5,
  FLAG_MILTER: 1 << 6,
  FLAG_FILTER_ALL: (1 << 1) | (1 << 6),
  FLAG_MASK_EXTERNAL: (1 << 1) | (1 << 6) | (1 << 4) | (1 << 5),
  FLAG_MASK_INTERNAL: 1 << 5,
};

/** cleanup_strerror.c, most severe first: the status bit, temporary or not, Postfix's text. */
const STATUS: ReadonlyArray<[number, boolean, string]> = [
  [1 << 8, true, "4.7.1 service unavailable"], // DEFER
  [1 << 7, true, "4.3.0 queue file write error"], // PROXY
  [1 << 0, true, "4.3.0 internal protocol error"], // BAD
  [1 << 6, false, "5.1.0 no recipients specified"], // RCPT
  [1 << 4, false, "5.4.0 too many hops"], // HOPS
  [1 << 2, false, "5.3.4 message file too big"], // SIZE
  [1 << 3, false, "5.7.1 message content rejected"], // CONT
  [1 << 1, true, "4.3.0 queue file write error"], // WRITE
  [1 << 9, false, "5.7.1 service denied"], // NOPERM
];

interface Data {
  /** From the argument (or the default); `cleanup_sockets` and POSTFIXQUEUE are read per message. */
  socket: string;
  flags: number;
  timeoutMs: number;
}

export const init: Init<Data> = function (_server, ...args) {
  const a = parsePluginArgs("queue/postfix-queue", args, {
    values: ["cleanup_socket", "postfix_timeout"],
    flags: Object.keys(FLAGS),
    positional: [0, args.length],
    usage: "SOCKET",
  });
  // One SOCKET (a path or host:port); a misspelt flag gets its own message.
  const odd = a.positional.find((w, i) => i > 0 || !target(w));
  if (odd?.startsWith("FLAG_")) throw new Error(`queue/postfix-queue: unknown cleanup flag ${odd}`);
  if (odd !== undefined) {
    throw new Error(
      `queue/postfix-queue: unknown argument "${odd}" (it takes: SOCKET, FLAG_..., cleanup_socket VALUE, postfix_timeout VALUE)`,
    );
  }
  const socket = a.values.cleanup_socket ?? a.positional[0] ?? "/var/spool/postfix/public/cleanup";
  const seconds = a.values.postfix_timeout ?? "30";
  let flags = 0;
  for (const f of a.flags) flags |= FLAGS[f]!;
  if (!target(socket)) throw new Error(`queue/postfix-queue: "${socket}" is neither a socket path nor host:port`);
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`queue/postfix-queue: bad postfix_timeout "${seconds}"`);
  this.data.socket = socket;
  this.data.flags = flags;
  this.data.timeoutMs = Number(seconds) * 1000;
};

function target(s: string): BackendTarget | undefined {
  if (s.startsWith("/")) return { path: s };
  const m = /^([\w.-]+):(\d{1,5})$/.exec(s);
  return m && Number(m[2]) <= 65535 ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

/** The sockets to try, in qpsmtpd's order of precedence. */
function sockets(p: HookContext<Data>): string[] {
  const env = process.env["POSTFIXQUEUE"];
  if (env) return [env];
  const listed = p.qp.config_all("cleanup_sockets");
  return listed.length > 0 ? [...listed] : [p.data.socket];
}

/** One queue-file record: type byte, length as base-128 little-endian (high bit: more), data. */
function record(type: string, data: Uint8Array | string): Buffer {
  const body = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const len: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from(type, "latin1"), Buffer.from(len), body]);
}

const LINE_CHUNK = 1024;

/** The message as records: `N` per line (CR LF or LF removed), `L` for each 1 kB of a longer one. */
async function* contentRecords(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let line: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    let start = 0;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const nl = buf.indexOf(10, start);
      const piece = buf.subarray(start, nl < 0 ? buf.length : nl);
      line.push(piece);
      size += piece.length;
      while (size > LINE_CHUNK) {
        const all = Buffer.concat(line);
        yield record("L", all.subarray(0, LINE_CHUNK));
        line = [all.subarray(LINE_CHUNK)];
        size = line[0]!.length;
      }
      if (nl < 0) break;
      let whole = Buffer.concat(line);
      if (whole.at(-1) === 13) whole = whole.subarray(0, -1);
      yield record("N", whole);
      line = [];
      size = 0;
      start = nl + 1;
    }
  }
  if (size > 0) yield record("N", Buffer.concat(line));
}

/** Reads attribute lists (`name\0value\0...\0`) from cleanup, bounded and within the time limit. */
class AttrReader {
  readonly #sock: net.Socket;
  readonly #timeoutMs: number;
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #error: Error | undefined;

  constructor(sock: net.Socket, timeoutMs: number) {
    this.#sock = sock;
    this.#timeoutMs = timeoutMs;
    sock.on("data", (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      if (this.#buf.length > 16_384) sock.destroy(new Error("answer too long"));
      this.#wake?.();
    });
    const fail = (e: Error): void => {
      this.#error ??= e;
      this.#wake?.();
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("connection closed by cleanup")));
  }

  /** The next list, as name → value. */
  async next(): Promise<Map<string, string>> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const parsed = this.#parse();
      if (parsed) return parsed;
      if (this.#error) throw this.#error;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#sock.destroy();
        throw new Error("timed out waiting for cleanup");
      }
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          r();
        };
      });
    }
  }

  /** A whole list from the buffer (removed from it), or undefined when it has not all come. */
  #parse(): Map<string, string> | undefined {
    const attrs = new Map<string, string>();
    let at = 0;
    for (;;) {
      const end = this.#buf.indexOf(0, at);
      if (end < 0) return undefined;
      const name = this.#buf.subarray(at, end).toString("latin1");
      if (name === "") {
        this.#buf = this.#buf.subarray(end + 1);
        return attrs;
      }
      if (!/^[a-z_]+$/.test(name)) throw new Error("cleanup sent something that is not an attribute list");
      const vend = this.#buf.indexOf(0, end + 1);
      if (vend < 0) return undefined;
      attrs.set(name, this.#buf.subarray(end + 1, vend).toString("utf8"));
      at = vend + 1;
    }
  }
}

/** The first of `list` that accepts a connection; the socket and its name. */
async function open(list: string[], d: Data, signal: AbortSignal): Promise<[net.Socket, string]> {
  const errors: string[] = [];
  for (const s of list) {
    const t = target(s);
    if (!t) {
      errors.push(`${s}: not a socket path nor host:port`);
      continue;
    }
    try {
      return [await connectBackend(t, d.timeoutMs, signal), s];
    } catch (e) {
      errors.push(`${s}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no cleanup socket answers (${errors.join("; ")})`);
}

/** Postfix's arrival time record: `seconds microseconds`. */
const timeRecord = (ms: number): string => `${Math.floor(ms / 1000)} ${(ms % 1000) * 1000}`;

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const d = this.data;
  const extra = txn.notes("postfix-queue-flags");
  const flags = d.flags | (typeof extra === "number" && Number.isInteger(extra) ? extra : 0);
  txn.notes("postfix-queue-flags", flags);
  let sock: net.Socket | undefined;
  let where = "";
  try {
    [sock, where] = await open(sockets(this), d, this.signal);
    const attrs = new AttrReader(sock, d.timeoutMs);
    let hello = await attrs.next();
    // Postfix 3.x announces its protocol first (in the same list as the queue id, or alone).
    if (hello.get("protocol") !== undefined && hello.get("protocol") !== "cleanup_protocol") {
      throw new Error(`the socket speaks ${hello.get("protocol")}, not cleanup_protocol`);
    }
    if (!hello.has("queue_id")) hello = await attrs.next();
    const queueId = hello.get("queue_id");
    if (!queueId || !/^[\w]+$/.test(queueId)) throw new Error("cleanup sent no queue id");
    await writeAll(sock, Buffer.from(`flags\0${flags}\0\0`, "latin1"));
    await writeAll(sock, envelopeRecords(this, txn));
    for await (const r of contentRecords(txn.message_stream())) await writeAll(sock, r);
    await writeAll(sock, Buffer.concat([record("X", ""), record("E", "")]));
    const answer = await attrs.next();
    const status = Number(answer.get("status"));
    const reason = (answer.get("reason") ?? "").replace(/[\r\n]/g, " ").trim();
    if (!answer.has("status") || !Number.isInteger(status)) throw new Error("cleanup sent no status");
    if (status === 0) {
      const msgId = (txn.header()?.get("Message-Id", 0) ?? "").replace(/[\r\n].*/s, "").trim();
      this.log(LOGINFO, `queued by Postfix as ${queueId} (${where})`);
      return [OK, `Queued! ${msgId} (Queue-Id: ${queueId})`];
    }
    const known = STATUS.find(([bit]) => (status & bit) !== 0);
    if (!known) throw new Error(`cleanup answered status ${status}${reason ? `: ${reason}` : ""}`);
    this.log(LOGERROR, `Postfix cleanup refused ${queueId}: status ${status}${reason ? `, ${reason}` : ""}`);
    // Cleanup's reason may lack the enhanced status code (a size or milter refusal): Postfix's own.
    const [dsn] = known[2].split(" ");
    const text = reason === "" ? known[2] : /^[245]\.\d{1,3}\.\d{1,3} /.test(reason) ? reason : `${dsn} ${reason}`;
    return [known[1] ? DENYSOFT : DENY, text];
  } catch (e) {
    this.log(LOGERROR, `Postfix cleanup ${where || "(none)"} failed, the message stays with the sender: ${(e as Error).message}`);
    return DECLINED;
  } finally {
    sock?.destroy();
  }
};

function envelopeRecords(p: HookContext<Data>, txn: Transaction): Buffer {
  return Buffer.concat([
    record("T", timeRecord(p.server.now())),
    record("A", "rewrite_context=remote"),
    record("S", txn.sender()?.address() ?? ""),
    ...txn.recipients().map((r) => record("R", r.address())),
    record("M", ""),
  ]);
}

/** `qpsmtpd check`: a cleanup socket answers with a queue id (the empty queue file is dropped). */
export const check: Check<Data> = async function () {
  const d = { ...this.data, timeoutMs: Math.min(this.data.timeoutMs, 10_000) };
  const list = process.env["POSTFIXQUEUE"] ? [process.env["POSTFIXQUEUE"]] : (() => {
    const listed = this.server.config_all("cleanup_sockets");
    return listed.length > 0 ? [...listed] : [d.socket];
  })();
  let sock: net.Socket | undefined;
  try {
    let where: string;
    [sock, where] = await open(list, d, this.signal);
    const attrs = new AttrReader(sock, d.timeoutMs);
    let hello = await attrs.next();
    if (!hello.has("queue_id") && hello.has("protocol")) hello = await attrs.next();
    return hello.has("queue_id") ? [] : [`${where} does not speak the cleanup protocol`];
  } catch (e) {
    return [`Postfix cleanup does not answer: ${(e as Error).message}`];
  } finally {
    sock?.destroy();
  }
};
