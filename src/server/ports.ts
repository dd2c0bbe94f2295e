/**
 * Whether a port the cluster is to listen on is taken already. The workers bind with
 * SO_REUSEPORT (node:cluster under Bun), which Linux lets a second program of the same user
 * share silently: a second qpsmtpd started by mistake would split the mail with the first. So
 * the primary looks in /proc/net/tcp and tcp6 for a listening socket on each port that is not
 * its own or its workers' (binding to try would accept connections in the meantime). It looks
 * while the workers start, before any serves: reading the tables takes the kernel 5 ms each
 * here, however few sockets there are. Elsewhere than Linux it finds nothing, and a worker's own
 * bind reports what it can.
 * @module
 */
import * as fs from "node:fs";

export interface Listening {
  readonly address: string;
  readonly port: number;
  /** The socket's inode, as in /proc/PID/fd's `socket:[N]` links. */
  readonly inode: number;
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
    if (address !== undefined) out.push({ address, port: parseInt(portHex, 16), inode: Number(f[9]) });
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

/**
 * What listens on this machine now, but the sockets that processes `ours` (pids) hold (nothing
 * where /proc/net is not Linux's).
 */
export async function listeningNow(ours: readonly number[] = []): Promise<Listening[]> {
  const [v4, v6] = await Promise.all([readListening("/proc/net/tcp", false), readListening("/proc/net/tcp6", true)]);
  // The descriptors after the tables: a socket of ours in the tables existed before, so it is there.
  const own = await socketInodes(ours);
  return [...v4, ...v6].filter((l) => !own.has(l.inode));
}

/** A line of /proc/net/tcp for a socket that does not listen (state other than 0A). */
const NOT_LISTENING = /^\s*\d+: \S+ \S+ (?!0A )[0-9A-F]{2} /m;

/**
 * The listening sockets of /proc/net/tcp or tcp6 (none when it cannot be read). The kernel lists
 * them before every other socket, so the reading stops at the first other one: after a busy
 * hour, tens of thousands in TIME_WAIT follow them (11,000 took 38 ms to list here).
 */
export async function readListening(path: string, v6: boolean): Promise<Listening[]> {
  let file: fs.promises.FileHandle;
  try {
    file = await fs.promises.open(path, "r");
  } catch {
    return [];
  }
  try {
    const chunk = Buffer.alloc(4096);
    let text = "";
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      text += chunk.toString("latin1", 0, bytesRead);
      if (NOT_LISTENING.test(text)) break;
    }
    return parseProcNet(text, v6);
  } catch {
    return [];
  } finally {
    await file.close();
  }
}

/** The inodes of the sockets that processes `pids` hold (/proc/PID/fd). */
async function socketInodes(pids: readonly number[]): Promise<Set<number>> {
  const inodes = new Set<number>();
  await Promise.all(pids.map(async (pid) => {
    const fds = await fs.promises.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    await Promise.all(fds.map(async (fd) => {
      const link = await fs.promises.readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(Number(m[1]));
    }));
  }));
  return inodes;
}
