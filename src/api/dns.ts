/**
 * The DNS resolver plugins get as `this.dns` (one per server, asynchronous, with a time budget
 * per lookup and a cache), and the error that tells why a lookup found nothing.
 *
 * ```ts
 * const names = await this.dns.resolve_ptr(this.connection.remote_ip); // [] when there is none
 * try {
 *   await this.dns.resolve(host, "A");                                  // strict: throws DnsError
 * } catch (e) {
 *   if (e instanceof DnsError && e.code === "NXDOMAIN") return [DENY, "no such domain"];
 *   if (e instanceof DnsError && e.temporary) return DENYSOFT;
 * }
 * ```
 * @module
 */

/** Record types the resolver asks for. */
export type RecordType = "A" | "AAAA" | "MX" | "TXT" | "PTR" | "NS" | "CNAME";

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/**
 * Why a lookup has no answer: `NXDOMAIN` (no such name), `NODATA` (the name exists, without
 * records of that type), `TIMEOUT` (no server answered in time), `SERVFAIL`, `REFUSED`,
 * `FORMERR` (a broken answer), or another response code's name.
 */
export type DnsErrorCode = "NXDOMAIN" | "NODATA" | "TIMEOUT" | "SERVFAIL" | "REFUSED" | "FORMERR" | (string & Record<never, never>);

export class DnsError extends Error {
  readonly code: DnsErrorCode;
  constructor(code: DnsErrorCode, message: string) {
    // An answer, not a fault (a name that does not exist, several a message): not worth a stack
    // trace, which would show only the resolver's frames. `stack` is the first line alone.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = "DnsError";
    this.code = code;
    this.stack = `DnsError: ${message}`;
  }

  /** True when asking again later may give an answer (not NXDOMAIN or NODATA). */
  get temporary(): boolean {
    return this.code !== "NXDOMAIN" && this.code !== "NODATA";
  }
}

export interface Resolver {
  /**
   * Strict lookup: the records, or a DnsError telling NXDOMAIN, NODATA, TIMEOUT and server
   * failure apart. MX answers are sorted by priority; TXT strings of one record are joined.
   */
  resolve(name: string, type: "MX"): Promise<MxRecord[]>;
  resolve(name: string, type: Exclude<RecordType, "MX">): Promise<string[]>;
  /** Addresses of `name`; [] when there is no such name or no A record. Throws DnsError on timeout or server failure. */
  resolve_a(name: string): Promise<string[]>;
  resolve_aaaa(name: string): Promise<string[]>;
  /** MX records sorted by priority; [] when there are none. */
  resolve_mx(name: string): Promise<MxRecord[]>;
  resolve_txt(name: string): Promise<string[]>;
  resolve_ns(name: string): Promise<string[]>;
  /** PTR names of an IPv4 or IPv6 address; [] when there are none. */
  resolve_ptr(ip: string): Promise<string[]>;
}

const NODE_CODES: Readonly<Record<string, string>> = {
  NXDOMAIN: "ENOTFOUND",
  NODATA: "ENODATA",
  TIMEOUT: "ETIMEOUT",
  SERVFAIL: "ESERVFAIL",
  REFUSED: "EREFUSED",
  FORMERR: "EFORMERR",
};
const NODE_TYPES = new Set(["A", "AAAA", "MX", "TXT", "PTR", "NS", "CNAME"]);

/** An Error with node:dns's `code`, without a stack trace (see DnsError). */
function coded(code: string, message: string): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e = new Error(message);
  Error.stackTraceLimit = limit;
  e.stack = `Error: ${message}`;
  return Object.assign(e, { code });
}

/**
 * `dns` in the shape of node:dns's `resolve(name, rrtype)`, for libraries that take one (mailauth's
 * `resolver` option): errors coded ENOTFOUND, ENODATA, ETIMEOUT…, TXT answers as lists of strings,
 * every lookup through the server's resolver (its servers, time budget and cache).
 */
export function nodeStyleResolve(dns: Resolver): (name: string, type: string) => Promise<unknown[]> {
  return async (name, type) => {
    const host = name.replace(/\.$/, "");
    // A name that cannot be asked (an empty or too long label) is not a DNS failure.
    if (host === "" || host.length > 253 || host.split(".").some((l) => l === "" || l.length > 63)) {
      throw coded("EBADNAME", `${name} is not a valid DNS name`);
    }
    if (!NODE_TYPES.has(type)) throw coded("ENOTIMP", `${type} lookups are not supported`);
    try {
      const records: unknown[] = await dns.resolve(host, type as Exclude<RecordType, "MX">);
      return type === "TXT" ? records.map((r) => [r]) : records;
    } catch (e) {
      if (!(e instanceof DnsError)) throw e;
      throw coded(NODE_CODES[e.code] ?? `E${e.code}`, e.message);
    }
  };
}
