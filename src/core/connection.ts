/**
 * What is known about one TCP connection: addresses, greeting, TLS, relay permission, notes.
 * @module
 */
import { Notes } from "./notes.ts";

export interface ConnectionInfo {
  remote_ip: string;
  remote_port: number;
  local_ip: string;
  local_port: number;
  remote_host?: string;
}

/** Strips the `::ffff:` prefix of an IPv4-mapped IPv6 address. */
export function normaliseIp(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

export class Connection {
  readonly remote_ip: string;
  readonly remote_port: number;
  readonly local_ip: string;
  readonly local_port: number;
  /** PTR name, `Unknown` when there is none or it was not looked up. */
  remote_host: string;
  /** `helo` or `ehlo` after a successful greeting. */
  hello: "helo" | "ehlo" | undefined;
  /** The argument the client gave to HELO/EHLO. */
  hello_host: string | undefined;
  #relay = false;
  /** TLS cipher name once TLS is active. */
  tls_cipher: string | undefined;
  readonly #notes = new Notes();
  /** Unique id for log lines. */
  readonly id: string;

  constructor(info: ConnectionInfo, id = "") {
    this.remote_ip = normaliseIp(info.remote_ip);
    this.remote_port = info.remote_port;
    this.local_ip = normaliseIp(info.local_ip);
    this.local_port = info.local_port;
    this.remote_host = info.remote_host ?? "Unknown";
    this.id = id;
  }

  /** `remote_host`, as qpsmtpd reports it when there is no ident data. */
  get remote_info(): string {
    return this.remote_host;
  }

  /** Gets, or sets and returns, whether this client may relay. */
  relay_client(value?: boolean): boolean {
    if (value !== undefined) this.#relay = value;
    return this.#relay;
  }

  notes(key: string, ...value: [unknown] | []): unknown {
    return this.#notes.access(key, value);
  }

  get tls(): boolean {
    return this.tls_cipher !== undefined;
  }

  /** Forgets what the client said before STARTTLS (RFC 3207): greeting and notes from it. */
  forgetHello(): void {
    this.hello = undefined;
    this.hello_host = undefined;
  }
}
