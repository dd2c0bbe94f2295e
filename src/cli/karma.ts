/**
 * `qpsmtpd karma`: qpsmtpd's karma_tool, on the karma plugin's store. Each address is a key
 * `karma|<ip>` holding JSON `{ nice, naughty, connects, penaltyUntil }` (epoch ms), as
 * plugins/karma.ts writes it, kept 400 days.
 *
 *   list                    every address: penalty end, naughty, nice, connects
 *   search naughty|nice|both|IP   the addresses with that history, or one address
 *   capture IP [DAYS]       puts IP in the penalty box (naughty + 1) for DAYS (the karma
 *                           line's penalty_days, else 1); "penalise" and "penalize" too
 *   release IP              takes IP out of the penalty box (naughty back to 0)
 * There is no `prune`: the plugin's entries expire by themselves 400 days after the last visit.
 * @module
 */
import { isIP } from "node:net";
import type { Store } from "../api/store.ts";

/** One address's history, as the karma plugin stores it. */
export interface KarmaHistory {
  nice: number;
  naughty: number;
  connects: number;
  /** End of the penalty box, epoch ms (0 = none). */
  penaltyUntil: number;
}

const PREFIX = "karma|";
const TTL = 400 * 86400;
const DAY = 86_400_000;

export interface KarmaToolOptions {
  readonly store: Store;
  /** The clock, epoch ms (the server's). */
  readonly now: () => number;
  /** The karma line's `penalty_days` (default 1). */
  readonly penaltyDays?: number;
  readonly out: (line: string) => void;
}

export const KARMA_USAGE = `qpsmtpd karma [--config DIR] [--db-dir DIR] COMMAND
  list                            every address in the karma store
  search naughty|nice|both|IP     addresses with that history, or one address
  capture IP [DAYS]               put IP in the penalty box (also: penalise, penalize)
  release IP                      take IP out of the penalty box
The store is the karma plugin's: its db_dir argument, else db_dir, else the spool directory.
`;

async function read(store: Store, ip: string): Promise<KarmaHistory> {
  const raw = await store.get(PREFIX + ip);
  const h = raw ? (JSON.parse(raw) as Partial<KarmaHistory>) : {};
  return { nice: h.nice ?? 0, naughty: h.naughty ?? 0, connects: h.connects ?? 0, penaltyUntil: h.penaltyUntil ?? 0 };
}

function row(ip: string, h: KarmaHistory, now: number): string {
  const penalty = h.penaltyUntil > now ? new Date(h.penaltyUntil).toISOString().slice(0, 16).replace("T", " ") : "-";
  return `${ip.padEnd(40)} ${penalty.padEnd(17)} ${String(h.naughty).padStart(7)} ${String(h.nice).padStart(5)} ${
    String(h.connects).padStart(8)
  }`;
}

const HEADER = `${"IP address".padEnd(40)} ${"penalty until".padEnd(17)} naughty  nice connects`;

/** Runs one karma_tool command; returns the exit code. */
export async function karmaTool(args: readonly string[], o: KarmaToolOptions): Promise<number> {
  const [command, arg, extra] = args;
  const now = o.now();
  const needIp = (): string | undefined => {
    if (arg && isIP(arg)) return arg;
    o.out(`qpsmtpd karma ${command}: "${arg ?? ""}" is not an IP address`);
    return undefined;
  };
  switch (command) {
    case "list":
    case "search": {
      if (command === "search" && arg && isIP(arg)) {
        o.out(HEADER);
        o.out(row(arg, await read(o.store, arg), now));
        return 0;
      }
      const filter = command === "search" ? arg : undefined;
      if (filter !== undefined && !["naughty", "nice", "both"].includes(filter)) {
        o.out(`qpsmtpd karma search: naughty, nice, both or an IP address, not "${filter}"`);
        return 2;
      }
      o.out(HEADER);
      for (const key of (await o.store.keys(PREFIX)).sort()) {
        const ip = key.slice(PREFIX.length);
        const h = await read(o.store, ip);
        if ((filter === "naughty" || filter === "both") && h.naughty === 0) continue;
        if ((filter === "nice" || filter === "both") && h.nice === 0) continue;
        o.out(row(ip, h, now));
      }
      return 0;
    }
    case "capture":
    case "penalise":
    case "penalize": {
      const ip = needIp();
      if (!ip) return 2;
      const days = extra !== undefined ? Number(extra) : o.penaltyDays ?? 1;
      if (!(days > 0)) {
        o.out(`qpsmtpd karma ${command}: "${extra}" is not a number of days`);
        return 2;
      }
      const h = await read(o.store, ip);
      h.naughty++;
      h.penaltyUntil = now + days * DAY;
      await o.store.set(PREFIX + ip, JSON.stringify(h), TTL);
      o.out(`${ip} is in the penalty box until ${new Date(h.penaltyUntil).toISOString()}`);
      return 0;
    }
    case "release": {
      const ip = needIp();
      if (!ip) return 2;
      const h = await read(o.store, ip);
      h.naughty = 0;
      h.penaltyUntil = 0;
      await o.store.set(PREFIX + ip, JSON.stringify(h), TTL);
      o.out(`${ip} is out of the penalty box`);
      return 0;
    }
    default:
      o.out(KARMA_USAGE.trimEnd());
      return command === undefined || command === "help" ? 0 : 2;
  }
}
