/**
 * What the primary and its workers tell each other over node:cluster's IPC channel. Every IPC
 * message is an array of these (see Outbox).
 * @module
 */
import type { ListenSpec } from "../config/settings.ts";
import type { BoundAddress } from "../runtime/sockets.ts";
import type { GateDown, GateUp } from "./admission.ts";
import type { LoadDown, LoadUp } from "./load.ts";
import type { ProcessView } from "./observe.ts";

/** The environment variable that carries a worker's WorkerConfig (JSON). */
export const WORKER_ENV = "QPSMTPD_WORKER";

/**
 * Everything a worker needs, from the primary: a worker does not read the command line (in
 * the compiled binary its arguments are the binary's path twice; under Deno they are absent).
 */
export interface WorkerConfig {
  /** The worker's slot, 1 to `workers` (a replacement takes the slot of the one it replaces). */
  readonly slot: number;
  readonly workers: number;
  /** The config search path. */
  readonly dirs: readonly string[];
  /** The listeners, ports resolved by the primary. */
  readonly listen: readonly ListenSpec[];
  readonly limitConnections: number;
  readonly maxFromIp: number;
  readonly user: string | undefined;
  readonly shutdownGrace: number;
}

export type Up =
  | GateUp
  | LoadUp
  /** Listening, privileges dropped: waiting for hello to serve. */
  | { readonly t: "ready"; readonly bound: readonly BoundAddress[] }
  /** Cannot start (plugins, listeners, privileges); the worker exits next. */
  | { readonly t: "fatal"; readonly message: string }
  /** The answer to observe `id`. */
  | { readonly t: "view"; readonly id: number; readonly view: ProcessView };

export type Down =
  | GateDown
  | LoadDown
  /** Serve now; these keys are locked (admission.ts), this is the stress state. */
  | { readonly t: "hello"; readonly locked: readonly string[]; readonly stressed: boolean }
  /** A line from the primary, for this worker's logging plugins. */
  | { readonly t: "log"; readonly level: number; readonly message: string }
  /** SIGHUP: reload config and plugins for new connections. */
  | { readonly t: "reload" }
  /** SIGTERM: stop accepting, drain, exit. */
  | { readonly t: "stop"; readonly signal: string }
  /** Metrics and status: send your ProcessView, tagged `id`. */
  | { readonly t: "observe"; readonly id: number };
