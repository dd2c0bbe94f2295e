/**
 * Typed notes. A note is a value a plugin keeps on the connection, the transaction or an address
 * for other plugins (or itself) to read later, as in qpsmtpd.
 *
 * The keys the core and the shared helpers use are declared here; a plugin declares its own by
 * declaration merging, and its reads and writes are then type-checked:
 *
 * ```ts
 * declare module "qpsmtpd" {
 *   interface ConnectionNotes {
 *     my_plugin_score: number;
 *   }
 * }
 * this.connection.notes("my_plugin_score", 3);            // checked: a number
 * const s = this.connection.notes("my_plugin_score");     // number | undefined
 * ```
 *
 * A key nobody declared still works; its value is `unknown`.
 * @module
 */

/** Notes that live as long as the connection. Extend it with `declare module "qpsmtpd"`. */
export interface ConnectionNotes {
  /** Deferred rejection text (`store_deferred_reject`), read by the naughty plugin. */
  naughty: string;
  /** The `reject_type` of the first deferred rejection. */
  naughty_reject_type: string;
  /** The connection's karma score (`adjust_karma`). */
  karma: number;
  /** The client is whitelisted by address or DNS (`is_immune`). */
  whitelisthost: string | number | boolean;
  /** The client's HELO name is whitelisted (the whitelist plugin). */
  whitelisthelo: string | number | boolean;
  /** Authentication-Results fragments found before MAIL (`store_auth_results`). */
  authentication_results: string;
  /** Failed AUTH attempts on this connection (the core's `max_auth_failures`). */
  auth_failures: number;
  /**
   * Set by the server on a connection that came through a PROXY listener (`proxy_ports` in
   * smtpd.yaml): the proxy's own socket address. `remote_ip` and `remote_port` of the connection
   * are then the real client's, from the PROXY header (the proxy's own when the header said
   * LOCAL or UNKNOWN).
   */
  proxy: { remote_ip: string; remote_port: number };
}

/** Notes that live as long as the transaction (MAIL to the end of DATA or RSET). */
export interface TransactionNotes {
  /** Extra EHLO keywords, e.g. `STARTTLS` (set during the `ehlo` hook). */
  capabilities: string[];
  /** The sender is whitelisted (`is_immune`). */
  whitelistsender: string | number | boolean;
  /** A recipient is whitelisted (the whitelist plugin; greylisting lets the message pass). */
  whitelistrcpt: string | number | boolean;
  /** Authentication-Results fragments of this message (`store_auth_results`). */
  authentication_results: string;
}

/** Notes on one Address object. */
// deno-lint-ignore no-empty-interface
export interface AddressNotes {}

/** The declared type of note `K` in `N`, or `unknown` for an undeclared key. */
export type NoteValue<N, K extends string> = K extends keyof N ? N[K] : unknown;

/** A prototype-less store behind a notes accessor, so a key such as `__proto__` is just a key. */
export function notesStore(): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>;
}

/** The body of every `notes()` method: sets when a value was passed, then reads. */
export function accessNote(store: Record<string, unknown>, key: string, value: readonly unknown[]): unknown {
  if (value.length > 0) store[key] = value[0];
  return store[key];
}
