/**
 * One connection to Redis in any of its three forms (one server, Sentinel, Cluster) behind the
 * few calls the store makes: a raw command, a key scan, a ping. `@redis/client` is loaded only
 * when a Redis store is configured. Its own reconnecting is off: redis_link.ts owns reconnecting,
 * so every form fails and recovers the same way.
 * @module
 */
import { readFileSync } from "node:fs";
import type { RedisSpec } from "./redis_url.ts";

export interface Backend {
  connect(): Promise<void>;
  /** One command; `key` routes it in a cluster. */
  send(key: string | undefined, args: readonly string[]): Promise<unknown>;
  /** Every key matching a SCAN pattern (on every master of a cluster). */
  scan(match: string): AsyncIterable<string>;
  /** Resolves when every node the store writes to answers. */
  ping(): Promise<void>;
  /** Drops the connections now; pending commands fail. */
  destroy(): void;
}

/** Redis answered with an error (WRONGTYPE, a script error): the connection itself is fine. */
export class ReplyError extends Error {
  override readonly name = "ReplyError";
}

type Args = readonly string[];
/**
 * Given with every command: no timer per command in the library (an AbortSignal.timeout and its
 * listeners, 7% of a message's CPU with greylisting, karma and limit on Redis). redis_link.ts
 * holds every operation to the store's time limit itself.
 */
const UNTIMED = { timeout: 0 } as const;
type Options = typeof UNTIMED;
interface Scanner {
  scanIterator(o: { MATCH: string; COUNT: number }): AsyncIterable<string[]>;
}
interface Client extends Scanner {
  connect(): Promise<unknown>;
  sendCommand(args: Args, options?: Options): Promise<unknown>;
  destroy(): void;
  on(ev: "error", fn: (e: Error) => void): unknown;
}
interface Cluster {
  connect(): Promise<unknown>;
  sendCommand(key: string | undefined, readonly: boolean, args: Args, options?: Options): Promise<unknown>;
  readonly masters: readonly unknown[];
  nodeClient(node: unknown): Promise<Client>;
  destroy(): void;
  on(ev: "error", fn: (e: Error) => void): unknown;
}
interface Sentinel extends Scanner {
  connect(): Promise<unknown>;
  sendCommand(readonly: boolean, args: Args, options?: Options): Promise<unknown>;
  destroy(): Promise<void>;
  on(ev: "error", fn: (e: Error) => void): unknown;
}

let client: Promise<typeof import("@redis/client")> | undefined;

/** Loads the client library once (it is big: hundreds of ms from source, less compiled). */
export function loadClient(): Promise<typeof import("@redis/client")> {
  return client ??= import("@redis/client");
}

/** A backend for `spec`, not yet connected; `onError` hears every connection error after connecting. */
export async function createBackend(spec: RedisSpec, onError: (e: Error) => void): Promise<Backend> {
  const redis = await loadClient();
  const reply = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e) => Promise.reject(e instanceof redis.ErrorReply ? new ReplyError(e.message) : e));
  const socket = {
    connectTimeout: spec.timeoutMs,
    reconnectStrategy: false as const,
    ...(spec.tls ? { tls: true as const, ...(spec.ca ? { ca: readFileSync(spec.ca) } : {}) } : {}),
  };
  const auth = {
    ...(spec.username ? { username: spec.username } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
  };
  if (spec.mode === "cluster") {
    const c = redis.createCluster({
      rootNodes: spec.nodes.map((n) => ({ socket: { ...socket, host: n.host, port: n.port } })),
      defaults: { ...auth, socket, disableOfflineQueue: true },
    }) as unknown as Cluster;
    c.on("error", onError);
    return {
      connect: async () => void (await c.connect()),
      send: (key, args) => reply(c.sendCommand(key, false, args, UNTIMED)),
      async *scan(match) {
        for (const m of c.masters) {
          for await (const batch of (await c.nodeClient(m)).scanIterator({ MATCH: match, COUNT: 500 })) yield* batch;
        }
      },
      ping: async () => void (await Promise.all(c.masters.map(async (m) => (await c.nodeClient(m)).sendCommand(["PING"])))),
      destroy: () => c.destroy(),
    };
  }
  if (spec.mode === "sentinel") {
    const s = redis.createSentinel({
      name: spec.master!,
      sentinelRootNodes: spec.nodes.map((n) => ({ host: n.host, port: n.port })),
      nodeClientOptions: { ...auth, database: spec.db, socket, disableOfflineQueue: true },
      sentinelClientOptions: { socket },
    }) as unknown as Sentinel;
    s.on("error", onError);
    return {
      connect: async () => void (await s.connect()),
      send: (_key, args) => reply(s.sendCommand(false, args, UNTIMED)),
      async *scan(match) {
        for await (const batch of s.scanIterator({ MATCH: match, COUNT: 500 })) yield* batch;
      },
      ping: async () => void (await s.sendCommand(false, ["PING"])),
      destroy: () => void s.destroy().catch(() => undefined),
    };
  }
  const n = spec.nodes[0]!;
  const c = redis.createClient({
    ...auth,
    database: spec.db,
    socket: { ...socket, host: n.host, port: n.port },
    disableOfflineQueue: true,
  }) as unknown as Client;
  c.on("error", onError);
  return {
    connect: async () => void (await c.connect()),
    send: (_key, args) => reply(c.sendCommand(args, UNTIMED)),
    async *scan(match) {
      for await (const batch of c.scanIterator({ MATCH: match, COUNT: 500 })) yield* batch;
    },
    ping: async () => void (await c.sendCommand(["PING"])),
    destroy: () => c.destroy(),
  };
}
