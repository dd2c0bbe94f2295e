/**
 * What a hook sees as `this.qp`: the session it runs for (qpsmtpd's `$self->qp`).
 * @module
 */
import type { SecureContext } from "node:tls";
import type { Address } from "../smtp/address.ts";
import type { Connection } from "./connection.ts";
import type { HookArgs, HookName } from "./hooks.ts";
import type { Outcome } from "./hook_runner.ts";
import type { Transaction } from "./transaction.ts";

export interface SessionApi {
  readonly connection: Connection;
  /** The current transaction, created if there is none. */
  readonly transaction: Transaction;
  has_transaction(): boolean;
  /** The first value of a config item (config hooks, then files). */
  config(name: string, address?: Address): string | undefined;
  /** Every value of a config item. */
  config_all(name: string, address?: Address): readonly string[];
  log(level: number, message: string, hook?: string, plugin?: string): void;
  /** Sends a reply (for plugins that return DONE after answering themselves). */
  respond(code: number, ...lines: string[]): void;
  /** Ends the transaction (fires reset_transaction) and starts none. */
  reset_transaction(): Promise<void>;
  /** Fires disconnect and closes the connection after the pending output. */
  disconnect(): Promise<void>;
  /** Answers `220`, drops every byte that came with STARTTLS, upgrades, and forgets the greeting. */
  start_tls(context: SecureContext, reply?: string): Promise<void>;
  /** Waits up to `ms` for the client to send anything, without reading it; true if it did. */
  input_pending(ms: number): Promise<boolean>;
  /** Reads one more line from the client (AUTH continuations); undefined when it went away. */
  read_line(): Promise<string | undefined>;
  run_hooks<H extends HookName>(hook: H, ...args: HookArgs[H]): Promise<Outcome>;
  readonly auth_user: string | undefined;
  readonly auth_mechanism: string | undefined;
  authenticated(): boolean;
  /** The host name from `me`. */
  readonly me: string;
  readonly version: string;
  readonly command_counter: number;
  spool_dir(): string;
  /** A new, empty, private temp file path in the spool dir, deleted with the transaction. */
  temp_file(): string;
}
