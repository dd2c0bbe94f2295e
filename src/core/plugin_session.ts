/**
 * `this.qp`: the session as plugins see it (qpsmtpd's names). The engine session behind it is
 * private, so a plugin cannot reach the input buffer, the transport or the engine's state.
 * @module
 */
import { VERSION } from "../api/version.ts";
import type { Address } from "../api/address.ts";
import type { Connection } from "../api/connection.ts";
import type { Session } from "../api/session.ts";
import type { Transaction } from "../api/transaction.ts";
import type { SmtpSession } from "./smtp_session.ts";

export class PluginSession implements Session {
  readonly #s: SmtpSession;

  constructor(session: SmtpSession) {
    this.#s = session;
  }

  get connection(): Connection {
    return this.#s.connection;
  }

  get transaction(): Transaction {
    return this.#s.transaction;
  }

  has_transaction(): boolean {
    return this.#s.hasTransaction();
  }

  config(name: string, address?: Address): string | undefined {
    return this.#s.config(name, address);
  }

  config_all(name: string, address?: Address): readonly string[] {
    return this.#s.configAll(name, address);
  }

  log(level: number, ...message: unknown[]): void {
    if (this.#s.host.logger.wants(level)) this.#s.log(level, message.map(String).join(" "));
  }

  respond(code: number, ...lines: string[]): void {
    this.#s.respond(code, ...lines);
  }

  respond_status(code: number, status: string, ...lines: string[]): void {
    this.#s.respondStatus(code, status, ...lines);
  }

  reset_transaction(): Promise<void> {
    return this.#s.resetTransaction();
  }

  disconnect(): Promise<void> {
    return this.#s.disconnect();
  }

  start_tls(reply?: string): Promise<void> {
    return this.#s.startTls(reply);
  }

  input_pending(ms: number): Promise<boolean> {
    return this.#s.inputPending(ms);
  }

  read_line(): Promise<string | undefined> {
    return this.#s.readLine();
  }

  get auth_user(): string | undefined {
    return this.#s.authUser;
  }

  get auth_mechanism(): string | undefined {
    return this.#s.authMechanism;
  }

  authenticated(): boolean {
    return this.#s.authenticated();
  }

  get me(): string {
    return this.#s.me;
  }

  get version(): string {
    return VERSION;
  }

  get command_counter(): number {
    return this.#s.commandCounter;
  }

  spool_dir(): string {
    return this.#s.spoolDir();
  }

  temp_file(): string {
    return this.#s.tempFile();
  }
}
