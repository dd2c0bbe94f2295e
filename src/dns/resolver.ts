/**
 * The server's async DNS stub resolver, on dns-packet: UDP with TCP fallback on truncation,
 * a time limit and retries per query, many queries in flight, and a small TTL cache (negative
 * answers included). It implements the public `Resolver`: strict `resolve()` tells NXDOMAIN,
 * NODATA, timeout and server failure apart; the `resolve_*` helpers give [] for the first two.
 * @module
 */
import * as dgram from "node:dgram";
import * as net from "node:net";
import { randomInt } from "node:crypto";
import * as fs from "node:fs";
import * as packet from "dns-packet";
import { DnsError, type MxRecord, type RecordType, type Resolver } from "../api/dns.ts";
import { reverseIp } from "../api/ip.ts";
import type { ConfigDir, ConfigLine } from "../config/files.ts";

export interface NameServer {
  readonly host: string;
  readonly port: number;
}

export interface ResolverOptions {
  readonly servers: readonly NameServer[];
  /** Time for a whole lookup (every try against every server), ms. @default 3000 */
  readonly timeoutMs?: number;
  /** Tries per server. @default 2 */
  readonly tries?: number;
  /** Cached answers at most. @default 10000 */
  readonly cacheSize?: number;
}

type QType = RecordType;
type Response = packet.DecodedPacket & { rcode: string };

/** A lookup's answer: the records of the asked type, and whether the name exists at all. */
interface Answer {
  readonly nxdomain: boolean;
  readonly answers: packet.Answer[];
}

interface Cached extends Answer {
  readonly expires: number;
}

/** How long "no such name" and "no data" are remembered, seconds. */
const NEGATIVE_TTL = 60;

/** Parses `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address. */
export function parseServer(s: string): NameServer | undefined {
  const t = s.trim();
  let m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (m && net.isIP(m[1]!)) return { host: m[1]!, port: m[2] ? Number(m[2]) : 53 };
  if (net.isIP(t)) return { host: t, port: 53 };
  m = /^([\d.]+):(\d+)$/.exec(t);
  if (m && net.isIPv4(m[1]!)) return { host: m[1]!, port: Number(m[2]) };
  return undefined;
}

/** Name servers from /etc/resolv.conf (127.0.0.1 if it lists none). */
export function systemServers(path = "/etc/resolv.conf"): NameServer[] {
  let text = "";
  try {
    text = fs.readFileSync(path, "utf8");
  } catch { /* none */ }
  const out = text.split("\n").map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x)
    .map(parseServer).filter((x): x is NameServer => !!x);
  return out.length ? out : [{ host: "127.0.0.1", port: 53 }];
}

export class DnsResolver implements Resolver {
  readonly servers: readonly NameServer[];
  readonly #timeout: number;
  readonly #tries: number;
  readonly #cacheSize: number;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Answer>>();

  constructor(opts: ResolverOptions) {
    this.servers = opts.servers;
    this.#timeout = opts.timeoutMs ?? 3000;
    this.#tries = opts.tries ?? 2;
    this.#cacheSize = opts.cacheSize ?? 10000;
  }

  /** The answer for `name` and `type` (CNAMEs followed by the server), from the cache when fresh. */
  async lookup(name: string, type: QType): Promise<Answer> {
    const key = `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
    const hit = this.#cache.get(key);
    if (hit && hit.expires > Date.now()) return hit;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#ask(name, type).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    const answer = await p;
    const ttl = answer.answers.length === 0
      ? NEGATIVE_TTL
      : answer.answers.reduce((min, a) => Math.min(min, "ttl" in a && typeof a.ttl === "number" ? a.ttl : 300), 300);
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { ...answer, expires: Date.now() + ttl * 1000 });
    return answer;
  }

  /** The records, or a DnsError: NXDOMAIN, NODATA, TIMEOUT, SERVFAIL, REFUSED, FORMERR. */
  resolve(name: string, type: "MX"): Promise<MxRecord[]>;
  resolve(name: string, type: Exclude<RecordType, "MX">): Promise<string[]>;
  async resolve(name: string, type: RecordType): Promise<string[] | MxRecord[]> {
    const a = await this.lookup(name, type);
    if (a.nxdomain) throw new DnsError("NXDOMAIN", `${name} does not exist`);
    if (a.answers.length === 0) throw new DnsError("NODATA", `${name} has no ${type} record`);
    return type === "MX" ? mxOf(a.answers) : a.answers.map(type === "TXT" ? txtOf : (r) => String(dataOf(r)));
  }

  /** The records; [] when the name or the records do not exist. */
  async #lenient(name: string, type: QType): Promise<packet.Answer[]> {
    return (await this.lookup(name, type)).answers;
  }

  /** Asks each server in turn, `tries` rounds, all within one `timeoutMs` budget per lookup. */
  async #ask(name: string, type: QType): Promise<Answer> {
    let last: DnsError = new DnsError("TIMEOUT", `no name server answered for ${name} ${type}`);
    const deadline = Date.now() + this.#timeout;
    const perTry = Math.max(50, Math.floor(this.#timeout / (this.#tries * this.servers.length)));
    for (let attempt = 0; attempt < this.#tries; attempt++) {
      for (const server of this.servers) {
        const left = deadline - Date.now();
        if (left <= 0) throw last;
        try {
          let res = await udpQuery(server, name, type, Math.min(perTry, left));
          if (res.flag_tc) res = await tcpQuery(server, name, type, Math.max(50, deadline - Date.now()));
          if (res.rcode === "NXDOMAIN" || res.rcode === "NOERROR") {
            return { nxdomain: res.rcode === "NXDOMAIN", answers: (res.answers ?? []).filter((a) => a.type === type) };
          }
          last = new DnsError(res.rcode, `${name} ${type}: ${res.rcode} from ${server.host}`);
        } catch (e) {
          last = e instanceof DnsError ? e : new DnsError("TIMEOUT", `${name} ${type}: ${(e as Error).message}`);
        }
      }
    }
    throw last;
  }

  async resolve_a(name: string): Promise<string[]> {
    return (await this.#lenient(name, "A")).map((a) => String(dataOf(a)));
  }

  async resolve_aaaa(name: string): Promise<string[]> {
    return (await this.#lenient(name, "AAAA")).map((a) => String(dataOf(a)));
  }

  async resolve_mx(name: string): Promise<MxRecord[]> {
    return mxOf(await this.#lenient(name, "MX"));
  }

  async resolve_txt(name: string): Promise<string[]> {
    return (await this.#lenient(name, "TXT")).map(txtOf);
  }

  async resolve_ns(name: string): Promise<string[]> {
    return (await this.#lenient(name, "NS")).map((a) => String(dataOf(a)));
  }

  async resolve_ptr(ip: string): Promise<string[]> {
    const rev = reverseIp(ip);
    if (!rev) return [];
    return (await this.#lenient(`${rev}.${net.isIPv4(ip) ? "in-addr" : "ip6"}.arpa`, "PTR")).map((a) => String(dataOf(a)));
  }
}

function dataOf(a: packet.Answer): unknown {
  return (a as { data?: unknown }).data;
}

function mxOf(answers: readonly packet.Answer[]): MxRecord[] {
  return answers
    .map((a) => dataOf(a) as packet.MxData)
    .map((d) => ({ exchange: d.exchange, priority: d.preference ?? 0 }))
    .sort((x, y) => x.priority - y.priority);
}

/** A TXT record's strings, joined (SPF and DNSBL texts are read this way). */
function txtOf(a: packet.Answer): string {
  const d = dataOf(a) as packet.TxtData;
  return (Array.isArray(d) ? d : [d]).map((x) => x.toString()).join("");
}

function query(name: string, type: QType): packet.Packet {
  return { type: "query", id: randomInt(65536), flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] };
}

function matches(res: packet.DecodedPacket, q: packet.Packet): boolean {
  const a = res.questions?.[0];
  const b = q.questions![0]!;
  return res.id === q.id && !!a && a.type === b.type && a.name.toLowerCase() === b.name.toLowerCase();
}

function udpQuery(server: NameServer, name: string, type: QType, timeoutMs: number): Promise<Response> {
  const q = query(name, type);
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server.host) ? "udp6" : "udp4");
    let closed = false;
    const done = (err: Error | undefined, res?: Response): void => {
      clearTimeout(timer);
      if (closed) return;
      closed = true;
      sock.close();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(
      () => done(new DnsError("TIMEOUT", `${name} ${type}: no answer from ${server.host} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on("error", (e) => done(e));
    sock.on("message", (msg, rinfo) => {
      if (rinfo.port !== server.port) return;
      let res: Response;
      try {
        res = packet.decode(msg) as Response;
      } catch {
        return; // junk: keep waiting for the real answer
      }
      if (matches(res, q)) done(undefined, res);
    });
    // Bind first: a send queued behind an implicit bind would throw once the socket is closed.
    sock.bind(0, () => {
      if (!closed) sock.send(packet.encode(q), server.port, server.host, (err) => err && done(err));
    });
  });
}

function tcpQuery(server: NameServer, name: string, type: QType, timeoutMs: number): Promise<Response> {
  const q = query(name, type);
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, server.host);
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, res?: Response): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => done(new DnsError("TIMEOUT", `${name} ${type}: no TCP answer from ${server.host}`)), timeoutMs);
    sock.on("error", (e) => done(e));
    sock.on("connect", () => sock.write(packet.streamEncode(q)));
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > 65537) return done(new DnsError("FORMERR", "TCP answer too long"));
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      try {
        const res = packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as Response;
        if (matches(res, q)) done(undefined, res);
        else done(new DnsError("FORMERR", "TCP answer does not match the question"));
      } catch (e) {
        done(new DnsError("FORMERR", (e as Error).message));
      }
    });
  });
}

/**
 * The resolver for a config directory: servers from `dns_servers` (`ip`, `ip:port` or
 * `[v6]:port` a line), else /etc/resolv.conf; `dns_timeout` seconds per lookup (default 3).
 * The returned function hands out one resolver and builds a new one when those files change.
 */
export function configuredResolver(): (config: ConfigDir, log: (level: number, message: string) => void) => Resolver {
  let current: DnsResolver | undefined;
  let currentKey = "";
  // The config's answers as last seen: the same array again (its cache) means nothing changed,
  // without building the key each time a plugin asks for `dns`, several times a message.
  let seen: { lines: readonly ConfigLine[]; timeout: string | undefined } | undefined;
  return (config, log) => {
    const lines = config.lines("dns_servers");
    const timeoutLine = config.get("dns_timeout");
    if (current && seen?.lines === lines && seen.timeout === timeoutLine) return current;
    seen = { lines, timeout: timeoutLine };
    const timeout = timeoutLine ?? "3";
    const key = `${lines.map((l) => l.value).join(" ")}|${timeout}`;
    if (current && key === currentKey) return current;
    const servers: NameServer[] = [];
    for (const l of lines) {
      const s = parseServer(l.value);
      if (s) servers.push(s);
      else log(3, `${l.file}:${l.line}: "${l.value}" is not a name server address; ignoring it`);
    }
    const ms = Math.max(100, Number(timeout) * 1000 || 3000);
    current = new DnsResolver({ servers: servers.length ? servers : systemServers(), timeoutMs: ms });
    currentKey = key;
    return current;
  };
}
