/**
 * What each session takes from its host when it starts or receives mail, made once a second per
 * host rather than once a connection: the limits and the default spool directory; and connection
 * ids, drawn from a pool of random bytes.
 * @module
 */
import { randomFillSync } from "node:crypto";
import { type Limits, readLimits } from "./limits.ts";
import type { ServerHost } from "./server_host.ts";

/** What `make` gives for `host`, made again after a second or a reload (as the config files are read). */
function perSecond<T>(cache: WeakMap<ServerHost, { at: number; generation: number; value: T }>, host: ServerHost, make: () => T): T {
  const now = host.clock.now();
  const generation = host.configDir.generation;
  const hit = cache.get(host);
  if (hit && hit.generation === generation && now - hit.at < 1000 && now >= hit.at) return hit.value;
  const value = make();
  cache.set(host, { at: now, generation, value });
  return value;
}

/**
 * The host's spool directory when no `spool_dir` is configured: it is wanted for every MAIL,
 * and asking makes a system call.
 */
const spoolDirs = new WeakMap<ServerHost, { at: number; generation: number; value: string }>();
export function defaultSpoolDir(host: ServerHost): string {
  return perSecond(spoolDirs, host, () => host.spoolDir());
}

/**
 * The limits from the config files, shared by the sessions that start within a second (they are
 * frozen): sixteen config lookups and an object per connection otherwise. A bad value is
 * reported by the session that reads it.
 */
const limitsByHost = new WeakMap<ServerHost, { at: number; generation: number; value: Limits }>();
export function sharedLimits(host: ServerHost, warn: (message: string) => void): Limits {
  const read = (): Limits => Object.freeze(readLimits(host.configDir, warn));
  // Overridden values (tests, `--config` tricks) change at will: read them each time.
  return host.configDir.overrides.size === 0 ? perSecond(limitsByHost, host, read) : read();
}

/** Random bytes for connection ids, drawn a few hundred ids at a time rather than once a connection. */
const idPool = Buffer.alloc(1024);
let idAt = idPool.length;

/** A connection id: 8 random hex digits. */
export function newId(): string {
  if (idAt + 4 > idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  idAt += 4;
  return idPool.toString("hex", idAt - 4, idAt);
}
