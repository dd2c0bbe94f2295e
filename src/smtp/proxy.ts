/**
 * The PROXY protocol header, versions 1 and 2 (HAProxy's proxy-protocol.txt), as a pure parser:
 * bytes in, a result out, no sockets. A proxy in front of the daemon (HAProxy `send-proxy`,
 * `send-proxy-v2`) sends it before anything else, so the server learns the real client's address.
 *
 * Strict, because the bytes come from the network before anything is known about the peer:
 * - v1 is one line `PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT\r\n` of at most 107 bytes,
 *   single spaces, printable ASCII, addresses valid for the family, decimal ports 0-65535
 *   without leading zeros (nor in IPv4 octets, as the spec says); `UNKNOWN` keeps the socket's
 *   addresses and ignores the rest of its line.
 * - v2 is the 12-byte signature, version 2, command LOCAL (keep the socket's addresses) or PROXY,
 *   a family and transport (TCP over IPv4 or IPv6 gives addresses; AF_UNSPEC and AF_UNIX keep the
 *   socket's; a datagram transport is refused), a big-endian length, the address block and TLVs.
 *   The length must cover the address block and is capped at {@link PROXY_V2_MAX_LENGTH}; the TLVs
 *   are walked to check their framing and otherwise ignored (never trusted).
 *
 * Garbage is refused as soon as a byte shows it, so a bad peer costs no waiting; the bytes held
 * while a header is incomplete never exceed 16 + {@link PROXY_V2_MAX_LENGTH}. Bytes after the
 * header are the client's SMTP and are returned untouched.
 * @module
 */
import { isIPv6 } from "node:net";
import { ipToBigInt } from "../api/ip.ts";

/** v1: the longest line, CR LF included (the spec's figure). */
export const PROXY_V1_MAX = 107;
/** v2: the largest address-and-TLV block accepted (the spec allows 65535; real proxies send a few hundred bytes). */
export const PROXY_V2_MAX_LENGTH = 4096;

const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
const CR = 13;
const LF = 10;
const EMPTY = new Uint8Array(0);

export interface ProxyEndpoint {
  readonly ip: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** What the header declared, for the log: `TCP4`, `TCP6`, `UNKNOWN`, `LOCAL`, `AF_UNSPEC`, `AF_UNIX`. */
  readonly kind: string;
  /**
   * The real client (`source`) and the address it connected to (`destination`); absent for
   * v1 `UNKNOWN`, v2 `LOCAL`, `AF_UNSPEC` and `AF_UNIX`, where the socket's own addresses stay.
   */
  readonly addresses?: { readonly source: ProxyEndpoint; readonly destination: ProxyEndpoint };
  /** v2 TLVs seen and ignored. */
  readonly tlvs: number;
  /** The header's size in bytes. */
  readonly length: number;
}

export type ProxyStep =
  /** Not complete yet: feed more bytes. */
  | { readonly state: "more" }
  /** A valid header; `rest` is what followed it (the client's SMTP, possibly empty). */
  | { readonly state: "done"; readonly header: ProxyHeader; readonly rest: Uint8Array }
  /** Not a valid header: refuse the connection. */
  | { readonly state: "error"; readonly reason: string };

const MORE: ProxyStep = { state: "more" };
const fail = (reason: string): ProxyStep => ({ state: "error", reason });

/**
 * Decides on everything received so far: complete, incomplete, or refused. Call it again with
 * the longer buffer when it says "more" ({@link ProxyHeaderReader} does the buffering).
 */
export function parseProxyHeader(buf: Uint8Array): ProxyStep {
  if (buf.length === 0) return MORE;
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  return fail("not a PROXY header");
}

/** Accumulates chunks until a header is complete or refused; holds at most the header's bytes. */
export class ProxyHeaderReader {
  #buf: Uint8Array = EMPTY;
  #result: ProxyStep = MORE;

  /** Adds a chunk; once the result is "done" or "error" it no longer changes. */
  push(chunk: Uint8Array): ProxyStep {
    if (this.#result.state !== "more") return this.#result;
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#result = parseProxyHeader(next);
    // Only an incomplete header is kept, and parseProxyHeader says "more" only below the caps.
    this.#buf = this.#result.state === "more" ? next : EMPTY;
    return this.#result;
  }

  /** Bytes held while the header is incomplete. */
  get buffered(): number {
    return this.#buf.length;
  }
}

// ---- v1 ----------------------------------------------------------------------------------

const V4_OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)";
const V4 = new RegExp(`^${V4_OCTET}(?:\\.${V4_OCTET}){3}$`);
const PORT = /^(?:0|[1-9]\d{0,4})$/;

function parseV1(buf: Uint8Array): ProxyStep {
  const n = Math.min(buf.length, V1_PREFIX.length);
  for (let i = 0; i < n; i++) if (buf[i] !== V1_PREFIX[i]) return fail("not a PROXY header");
  // The CR LF must start by this index for the line to fit in PROXY_V1_MAX bytes.
  const lastCr = PROXY_V1_MAX - 2;
  let end = -1;
  const scan = Math.min(buf.length, lastCr + 1);
  for (let i = 0; i < scan; i++) {
    const b = buf[i]!;
    if (b === CR) {
      if (i + 1 >= buf.length) return MORE;
      if (buf[i + 1] !== LF) return fail("v1 header has a bare CR");
      end = i;
      break;
    }
    if (b < 0x20 || b > 0x7e) return fail("v1 header has a control or non-ASCII byte");
  }
  if (end < 0) return buf.length > lastCr ? fail(`v1 header longer than ${PROXY_V1_MAX} bytes`) : MORE;
  const line = String.fromCharCode(...buf.subarray(0, end));
  const length = end + 2;
  const rest = buf.subarray(length);
  const words = line.split(" ");
  if (words[1] === "UNKNOWN") return { state: "done", header: { version: 1, kind: "UNKNOWN", tlvs: 0, length }, rest };
  const [, family, src, dst, sport, dport] = words;
  if (words.length !== 6) return fail("v1 header is not PROXY FAMILY SRC DST SPORT DPORT with single spaces");
  if (family !== "TCP4" && family !== "TCP6") return fail(`v1 family is not TCP4, TCP6 or UNKNOWN: ${JSON.stringify(family)}`);
  const source = v1Address(family, src!);
  const destination = v1Address(family, dst!);
  if (source === undefined || destination === undefined) return fail(`v1 address not valid for ${family}`);
  const sp = v1Port(sport!);
  const dp = v1Port(dport!);
  if (sp === undefined || dp === undefined) return fail("v1 port not a number 0-65535 without leading zeros");
  return {
    state: "done",
    header: {
      version: 1,
      kind: family,
      addresses: { source: { ip: source, port: sp }, destination: { ip: destination, port: dp } },
      tlvs: 0,
      length,
    },
    rest,
  };
}

function v1Address(family: "TCP4" | "TCP6", text: string): string | undefined {
  if (family === "TCP4") return V4.test(text) ? text : undefined;
  // Hex groups, colons and an optional dotted IPv4 tail; no zone index, no brackets.
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !isIPv6(text)) return undefined;
  // ipToBigInt reads the dotted IPv4-mapped form as the IPv4 address it carries.
  const v = ipToBigInt(text);
  if (v === undefined) return undefined;
  return formatV6(v.bits === 32 ? (0xffffn << 32n) | v.value : v.value);
}

function v1Port(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

// ---- v2 ----------------------------------------------------------------------------------

/** Family and transport byte → the address block's size; datagram transports are absent (refused). */
const V2_FAMILIES: ReadonlyMap<number, { kind: string; size: number }> = new Map([
  [0x00, { kind: "AF_UNSPEC", size: 0 }],
  [0x11, { kind: "TCP4", size: 12 }],
  [0x21, { kind: "TCP6", size: 36 }],
  [0x31, { kind: "AF_UNIX", size: 216 }],
]);
const V2_DATAGRAM = new Set([0x12, 0x22, 0x32]);

function parseV2(buf: Uint8Array): ProxyStep {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== V2_SIGNATURE[i]) return fail("not a PROXY header");
  // Each field is judged as soon as it is in, so a bad header costs no waiting.
  if (buf.length < 13) return MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return fail(`v2 version ${verCmd >> 4}, not 2`);
  const command = verCmd & 0x0f;
  if (command !== 0 && command !== 1) return fail(`v2 command ${command} is neither LOCAL (0) nor PROXY (1)`);
  if (buf.length < 14) return MORE;
  const famByte = buf[13]!;
  const family = V2_FAMILIES.get(famByte);
  // LOCAL (a health check from the proxy itself) ignores the family; PROXY must name a stream.
  if (command === 1) {
    if (V2_DATAGRAM.has(famByte)) return fail("v2 header for a datagram transport on a stream connection");
    if (family === undefined) return fail(`v2 family/transport 0x${famByte.toString(16).padStart(2, "0")} not valid`);
  }
  if (buf.length < 16) return MORE;
  const len = (buf[14]! << 8) | buf[15]!;
  if (len > PROXY_V2_MAX_LENGTH) return fail(`v2 header length ${len} over the limit of ${PROXY_V2_MAX_LENGTH}`);
  if (command === 1 && len < family!.size) {
    return fail(`v2 length ${len} shorter than the ${family!.kind} address block (${family!.size})`);
  }
  const length = 16 + len;
  if (buf.length < length) return MORE;
  const rest = buf.subarray(length);
  if (command === 0) return { state: "done", header: { version: 2, kind: "LOCAL", tlvs: 0, length }, rest };
  const body = buf.subarray(16, length);
  const tlvs = countTlvs(body.subarray(family!.size));
  if (tlvs === undefined) return fail("v2 TLVs overrun the header");
  const header: ProxyHeader = { version: 2, kind: family!.kind, tlvs, length, ...v2Addresses(famByte, body) };
  return { state: "done", header, rest };
}

function v2Addresses(famByte: number, body: Uint8Array): Pick<ProxyHeader, "addresses"> {
  const port = (at: number): number => (body[at]! << 8) | body[at + 1]!;
  if (famByte === 0x11) {
    return {
      addresses: {
        source: { ip: body.subarray(0, 4).join("."), port: port(8) },
        destination: { ip: body.subarray(4, 8).join("."), port: port(10) },
      },
    };
  }
  if (famByte === 0x21) {
    return {
      addresses: {
        source: { ip: formatV6(toBigInt(body.subarray(0, 16))), port: port(32) },
        destination: { ip: formatV6(toBigInt(body.subarray(16, 32))), port: port(34) },
      },
    };
  }
  return {};
}

/** Walks type/length/value triples; undefined when one overruns the block. */
function countTlvs(block: Uint8Array): number | undefined {
  let at = 0;
  let count = 0;
  while (at < block.length) {
    if (block.length - at < 3) return undefined;
    const len = (block[at + 1]! << 8) | block[at + 2]!;
    at += 3 + len;
    if (at > block.length) return undefined;
    count++;
  }
  return count;
}

// ---- IPv6 text -----------------------------------------------------------------------------

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

/**
 * RFC 5952 text: lower case, the longest run of two or more zero groups as `::`, and an
 * IPv4-mapped address as `::ffff:a.b.c.d` (which the server then reads as the IPv4 address).
 */
export function formatV6(value: bigint): string {
  if (value >> 32n === 0xffffn) {
    const v4 = [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join(".");
    return `::ffff:${v4}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
