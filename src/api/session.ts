/**
 * The session a hook runs for, as `this.qp` (qpsmtpd's `$self->qp`): config with the config
 * hooks, replies, the transaction's life, TLS and the client's input.
 * @module
 */
import type { Address } from "./address.ts";
import type { Connection } from "./connection.ts";
import type { Transaction } from "./transaction.ts";

export interface Session {
  readonly connection: Connection;
  /** The current transaction, created if there is none. */
  readonly transaction: Transaction;
  has_transaction(): boolean;
  /** The first value of a config item: the `user_config` hooks (with an address), the `config` hooks, then the files. */
  config(name: string, address?: Address): string | undefined;
  /** Every value of a config item. */
  config_all(name: string, address?: Address): readonly string[];
  /** Logs for this connection (plugins usually call `this.log`). */
  log(level: number, ...message: unknown[]): void;
  /** Sends a reply; for hooks that answer themselves and return DONE. */
  respond(code: number, ...lines: string[]): void;
  /**
   * Sends a reply with its RFC 3463 status code (`4.3.0`) in front of each line when the client
   * speaks ENHANCEDSTATUSCODES (it said EHLO), as the engine's own replies; for hooks that answer
   * themselves and return DONE.
   */
  respond_status(code: number, status: string, ...lines: string[]): void;
  /** Ends the transaction (the `reset_transaction` hooks run) without starting another. */
  reset_transaction(): Promise<void>;
  /** Runs the `disconnect` hooks and closes the connection after the pending output. */
  disconnect(): Promise<void>;
  /**
   * Answers `220`, drops every byte that came with STARTTLS, upgrades with the server's TLS
   * settings (`server.set_tls`), and forgets the greeting. Throws when the handshake fails.
   */
  start_tls(reply?: string): Promise<void>;
  /** Waits up to `ms` for the client to send anything, without reading it; true if it did. */
  input_pending(ms: number): Promise<boolean>;
  /** Reads one more line from the client (AUTH continuations); undefined when it went away. */
  read_line(): Promise<string | undefined>;
  /** The user name of a successful AUTH. */
  readonly auth_user: string | undefined;
  readonly auth_mechanism: string | undefined;
  authenticated(): boolean;
  /** The host name from `me`. */
  readonly me: string;
  readonly version: string;
  /** Commands received on this connection so far. */
  readonly command_counter: number;
  spool_dir(): string;
  /** A new, empty, private file path in the spool dir, deleted with the transaction. */
  temp_file(): string;
}
