/**
 * Whether a port the cluster is to listen on is taken already. The workers bind with
 * SO_REUSEPORT (node:cluster under Bun), which Linux lets a second program of the same user
 * share silently: a second qpsmtpd started by mistake would split the mail with the first. So
 * the primary looks in /proc/net/tcp and tcp6 for a listening socket on each port before it
 * forks (binding to try would accept connections in the meantime). Elsewhere than Linux it
 * finds nothing, and a worker's own bind reports what it can.
 * @module
 */
import * as fs from "node:fs";

export interface Listening {
  readonly address: string;
  readonly port: number;
}

/** The listening sockets in the text of /proc/net/tcp (`v6` false) or /proc/net/tcp6. */
export function parseProcNet(text: string, v6: boolean): Listening[] {
  const out: Listening[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== "0A") continue; // 0A: TCP_LISTEN
    const [hex, portHex] = f[1]!.split(":");
    if (!hex || !portHex) continue;
    const address = v6 ? ipv6(hex) : ipv4(hex);
    if (address !== undefined) out.push({ address, port: parseInt(portHex, 16) });
  }
  return out;
}

/** `0100007F` (a 32-bit word in host order, little-endian here) to 127.0.0.1. */
function ipv4(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const bytes = [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return bytes.join(".");
}

/** Four such words: the 16 bytes, written as eight groups, `::` where they are 0. */
function ipv6(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) for (const i of [6, 4, 2, 0]) bytes.push(parseInt(hex.slice(w * 8 + i, w * 8 + i + 2), 16));
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join(".")}`;
  }
  if (bytes.every((b) => b === 0)) return "::";
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

/** Whether binding `host:port` would meet `taken` (the same port on the same or a wildcard address). */
export function clashes(host: string, port: number, taken: readonly Listening[]): Listening | undefined {
  const mine = host.replace(/^\[|\]$/g, "").toLowerCase();
  return taken.find((t) => {
    if (t.port !== port) return false;
    const theirs = t.address.replace(/^::ffff:/, "");
    return WILDCARDS.has(mine) || WILDCARDS.has(t.address) || theirs === mine.replace(/^::ffff:/, "");
  });
}

/** What listens on this machine now (nothing where /proc/net is not Linux's). */
export function listeningNow(): Listening[] {
  const read = (path: string): string => {
    try {
      return fs.readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  return [...parseProcNet(read("/proc/net/tcp"), false), ...parseProcNet(read("/proc/net/tcp6"), true)];
}
