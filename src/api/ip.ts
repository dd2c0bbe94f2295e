/**
 * IP address helpers for access lists and DNS lists: IPv4 and IPv6 alike, CIDR bounds inclusive.
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";

/** Strips the `::ffff:` prefix of an IPv4-mapped IPv6 address. */
export function normaliseIp(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

/** An IPv4 address as a number (below 2^32); undefined when it is not one. */
function ipv4Number(ip: string): number | undefined {
  if (!isIPv4(ip)) return undefined;
  let v = 0;
  for (const octet of ip.split(".")) v = v * 256 + Number(octet);
  return v;
}

/** The address as a number and its width in bits; undefined when it is not an IP address. */
export function ipToBigInt(ip: string): { value: bigint; bits: 32 | 128 } | undefined {
  const a = normaliseIp(ip);
  const n4 = ipv4Number(a);
  if (n4 !== undefined) return { value: BigInt(n4), bits: 32 };
  if (!isIPv6(a)) return undefined;
  let s = a.replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = ipv4Number(v4[1]!)!;
    s = s.slice(0, -v4[1]!.length) + `${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? s.split("::") as [string, string] : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n), bits: 128 };
}

/** Whether `ip` is inside `cidr` (`192.0.2.0/24`, `2001:db8::/32`); a bare address matches itself. */
export function cidrContains(cidr: string, ip: string): boolean {
  const [net = "", lenText, ...more] = cidr.split("/");
  // A length is digits, nothing else: Number() would read "" (a typo'd `10.0.0.0/`) as 0, a
  // network holding every address, and "0x8" as 8.
  if (more.length > 0 || (lenText !== undefined && !/^\d{1,3}$/.test(lenText))) return false;
  // IPv4, what most lists hold, in plain numbers: BigInt costs about 2 µs an address.
  const n4 = ipv4Number(normaliseIp(net));
  const a4 = ipv4Number(normaliseIp(ip));
  if (n4 !== undefined || a4 !== undefined) {
    if (n4 === undefined || a4 === undefined) return false;
    const len = lenText === undefined ? 32 : Number(lenText);
    if (len > 32) return false;
    const size = 2 ** (32 - len);
    return Math.floor(n4 / size) === Math.floor(a4 / size);
  }
  const n = ipToBigInt(net);
  const a = ipToBigInt(ip);
  if (!n || !a || n.bits !== a.bits) return false;
  const len = lenText === undefined ? n.bits : Number(lenText);
  if (len > n.bits) return false;
  const shift = BigInt(n.bits - len);
  return (n.value >> shift) === (a.value >> shift);
}

/**
 * qpsmtpd's client-list entry: an address, a CIDR, or a prefix ending in `.` or `:`
 * (`192.168.` matches 192.168.0.0/16 textually, as qmail's tcprules do).
 */
export function matchesClientEntry(entry: string, ip: string): boolean {
  const e = entry.trim();
  const a = normaliseIp(ip);
  if (e === "") return false;
  if (e.endsWith(".") || (e.endsWith(":") && !e.endsWith("::"))) return a.toLowerCase().startsWith(e.toLowerCase());
  return cidrContains(e, a); // a bare address is the network of itself alone
}

/** Whether two addresses are equal or, for IPv4, share a /24 (server pools: qpsmtpd's rule). */
export function sameNet24(a: string, b: string): boolean {
  if (a === b) return true;
  return isIPv4(a) && isIPv4(b) && a.slice(0, a.lastIndexOf(".")) === b.slice(0, b.lastIndexOf("."));
}

/** `1.2.3.4` → `4.3.2.1`, and IPv6 to its nibble form, for DNSBL and PTR names; undefined for a non-address. */
export function reverseIp(ip: string): string | undefined {
  if (isIPv4(ip)) return ip.split(".").reverse().join(".");
  const v6 = isIPv6(ip) ? ipToBigInt(ip) : undefined;
  return v6?.value.toString(16).padStart(32, "0").split("").reverse().join(".");
}
