/**
 * The engine's connection object: what plugins see as `this.connection`, plus the few changes
 * only the engine makes (greeting, TLS), reachable through `connectionControl` and nowhere else.
 * @module
 */
import type { Connection } from "../api/connection.ts";
import { normaliseIp } from "../api/ip.ts";
import { accessNote, type ConnectionNotes, notesStore, type NoteValue } from "../api/notes.ts";

/** Socket addresses of a new connection. */
export interface Endpoints {
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
}

/** What only the engine may change on a connection. */
export interface ConnectionControl {
  greeted(c: SmtpConnection, verb: "helo" | "ehlo", host: string): void;
  /** The HELO name a proxy reported (XCLIENT HELO); a later HELO/EHLO replaces it. */
  reportedHelo(c: SmtpConnection, host: string): void;
  /** TLS is up: records the cipher and forgets the greeting (RFC 3207). */
  secured(c: SmtpConnection, cipher: string): void;
}

let control!: ConnectionControl;

export class SmtpConnection implements Connection {
  readonly id: string;
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
  remote_host = "Unknown";
  #hello: "helo" | "ehlo" | undefined;
  #helloHost: string | undefined;
  #relay = false;
  #cipher: string | undefined;
  readonly #notes = notesStore();

  constructor(endpoints: Endpoints, id: string, tlsCipher?: string) {
    this.id = id;
    this.remote_ip = normaliseIp(endpoints.remote_ip);
    this.remote_port = endpoints.remote_port;
    this.local_ip = normaliseIp(endpoints.local_ip);
    this.local_port = endpoints.local_port;
    this.#cipher = tlsCipher;
  }

  static {
    control = {
      greeted(c, verb, host) {
        c.#hello = verb;
        c.#helloHost = host;
      },
      reportedHelo(c, host) {
        c.#helloHost = host;
      },
      secured(c, cipher) {
        c.#cipher = cipher;
        c.#hello = undefined;
        c.#helloHost = undefined;
      },
    };
  }

  get remote_info(): string {
    return this.remote_host;
  }

  get hello(): "helo" | "ehlo" | undefined {
    return this.#hello;
  }

  get hello_host(): string | undefined {
    return this.#helloHost;
  }

  relay_client(value?: boolean): boolean {
    if (value !== undefined) this.#relay = value;
    return this.#relay;
  }

  get tls(): boolean {
    return this.#cipher !== undefined;
  }

  get tls_cipher(): string | undefined {
    return this.#cipher;
  }

  notes<K extends string>(key: K, ...value: [NoteValue<ConnectionNotes, K> | undefined] | []): NoteValue<ConnectionNotes, K> | undefined {
    return accessNote(this.#notes, key, value) as NoteValue<ConnectionNotes, K> | undefined;
  }
}

export const connectionControl: ConnectionControl = control;
