/**
 * What a plugin knows about the client's connection (`this.connection`).
 * @module
 */
import type { ConnectionNotes, NoteValue } from "./notes.ts";

export interface Connection {
  /** A short id unique to this connection, in every log line about it. */
  readonly id: string;
  /** The client's address; an IPv4-mapped IPv6 address is given as plain IPv4. */
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
  /** The client's verified name (fcrdns sets it), `Unknown` until then. */
  remote_host: string;
  /** `remote_host`, as qpsmtpd reports it when there is no ident data. */
  readonly remote_info: string;
  /** `helo` or `ehlo` after a successful greeting, else undefined. */
  readonly hello: "helo" | "ehlo" | undefined;
  /** The argument the client gave to HELO or EHLO. */
  readonly hello_host: string | undefined;
  /** Gets, or sets and returns, whether this client may relay. */
  relay_client(value?: boolean): boolean;
  /** Whether TLS is active (STARTTLS done or implicit TLS). */
  readonly tls: boolean;
  /** The TLS cipher's name once TLS is active. */
  readonly tls_cipher: string | undefined;
  /** Notes for the life of the connection; declare yours in `ConnectionNotes`. */
  notes<K extends string>(key: K, ...value: [NoteValue<ConnectionNotes, K> | undefined] | []): NoteValue<ConnectionNotes, K> | undefined;
}
