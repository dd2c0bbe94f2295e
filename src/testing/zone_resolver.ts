/**
 * A resolver that answers from a map instead of the network, for plugin tests.
 *
 * ```ts
 * const dns = {
 *   "mx.example.com": { A: ["192.0.2.25"] },
 *   "example.com": { MX: [[10, "mx.example.com"]], TXT: ["v=spf1 -all"] },
 *   "25.2.0.192.in-addr.arpa": { PTR: ["mx.example.com"] },
 *   "slow.example": "TIMEOUT",
 *   "broken.example": "SERVFAIL",
 * };
 * const t = await TestSession.start({ dns, plugins: ["fcrdns"] });
 * ```
 * A name not in the map does not exist (NXDOMAIN); a name without the asked type has NODATA.
 * @module
 */
import { DnsError, type MxRecord, type RecordType, type Resolver } from "../api/dns.ts";
import { reverseIp } from "../api/ip.ts";
import { isIPv4 } from "node:net";

/** A name's records by type, or the failure asking for it gives. */
export type ZoneEntry =
  | {
    readonly A?: readonly string[];
    readonly AAAA?: readonly string[];
    /** `[priority, exchange]` pairs. */
    readonly MX?: ReadonlyArray<readonly [number, string]>;
    readonly TXT?: readonly string[];
    readonly PTR?: readonly string[];
    readonly NS?: readonly string[];
    readonly CNAME?: readonly string[];
  }
  | "NXDOMAIN"
  | "TIMEOUT"
  | "SERVFAIL"
  | "REFUSED";

/** Names (without the final dot, any case) to their entries. */
export type Zones = Readonly<Record<string, ZoneEntry>>;

export class ZoneResolver implements Resolver {
  readonly #zones: Map<string, ZoneEntry>;
  /** Every lookup asked, as `TYPE name`, for tests that count queries. */
  readonly queries: string[] = [];

  constructor(zones: Zones) {
    this.#zones = new Map(Object.entries(zones).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ""), v]));
  }

  #records(name: string, type: RecordType): string[] | MxRecord[] {
    const key = name.toLowerCase().replace(/\.$/, "");
    this.queries.push(`${type} ${key}`);
    const e = this.#zones.get(key);
    if (e === undefined || e === "NXDOMAIN") throw new DnsError("NXDOMAIN", `${name} does not exist`);
    if (typeof e === "string") throw new DnsError(e, `${name} ${type}: ${e}`);
    if (type === "MX") {
      const mx = (e.MX ?? []).map(([priority, exchange]) => ({ priority, exchange })).sort((a, b) => a.priority - b.priority);
      if (mx.length === 0) throw new DnsError("NODATA", `${name} has no MX record`);
      return mx;
    }
    const list = e[type] ?? [];
    if (list.length === 0) throw new DnsError("NODATA", `${name} has no ${type} record`);
    return [...list];
  }

  resolve(name: string, type: "MX"): Promise<MxRecord[]>;
  resolve(name: string, type: Exclude<RecordType, "MX">): Promise<string[]>;
  resolve(name: string, type: RecordType): Promise<string[] | MxRecord[]> {
    try {
      return Promise.resolve(this.#records(name, type));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #lenient<T>(name: string, type: RecordType): Promise<T[]> {
    try {
      return Promise.resolve(this.#records(name, type) as T[]);
    } catch (e) {
      return e instanceof DnsError && !e.temporary ? Promise.resolve([]) : Promise.reject(e);
    }
  }

  resolve_a(name: string): Promise<string[]> {
    return this.#lenient(name, "A");
  }

  resolve_aaaa(name: string): Promise<string[]> {
    return this.#lenient(name, "AAAA");
  }

  resolve_mx(name: string): Promise<MxRecord[]> {
    return this.#lenient(name, "MX");
  }

  resolve_txt(name: string): Promise<string[]> {
    return this.#lenient(name, "TXT");
  }

  resolve_ns(name: string): Promise<string[]> {
    return this.#lenient(name, "NS");
  }

  resolve_ptr(ip: string): Promise<string[]> {
    const rev = reverseIp(ip);
    if (!rev) return Promise.resolve([]);
    return this.#lenient(`${rev}.${isIPv4(ip) ? "in-addr" : "ip6"}.arpa`, "PTR");
  }
}
