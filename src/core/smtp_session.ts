/**
 * What the command handlers (`commands.ts`, `data.ts`, `auth.ts`) and `PluginSession` need from
 * the engine's session. `Session` implements it; the handlers depend on this interface only, so
 * the session and its handlers do not import each other.
 * @module
 */
import type { Address } from "../api/address.ts";
import type { HookArgs } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { InputBuffer } from "../smtp/input.ts";
import type { Clock } from "./clock.ts";
import type { Endpoints, SmtpConnection } from "./connection.ts";
import type { Outcome } from "./hook_runner.ts";
import type { Limits } from "./limits.ts";
import type { Registry } from "./registry.ts";
import type { Reply } from "./replies.ts";
import type { ServerHost } from "./server_host.ts";
import type { SmtpTransaction } from "./transaction.ts";

export interface SmtpSession {
  readonly registry: Registry;
  readonly host: ServerHost;
  readonly clock: Clock;
  readonly connection: SmtpConnection;
  readonly limits: Limits;
  /** The client's unread input. */
  readonly input: InputBuffer;
  readonly closed: boolean;
  readonly me: string;
  /** The current transaction, created if there is none. */
  readonly transaction: SmtpTransaction;
  /** Replies carry RFC 2034 enhanced status codes (after EHLO). */
  enhancedCodes: boolean;
  /** Transactions begun (MAIL accepted) in this session. */
  transactions: number;
  /** AUTH was advertised in the last EHLO (the AUTH command exists only then). */
  authAdvertised: boolean;
  authUser: string | undefined;
  authMechanism: string | undefined;
  readonly commandCounter: number;
  hasTransaction(): boolean;
  resetTransaction(): Promise<void>;
  /** resetTransaction, undefined when it is done at once (no reset_transaction plugin). */
  resetTransactionNow(): Promise<void> | undefined;
  runHooks<H extends HookName>(hook: H, ...args: HookArgs[H]): Promise<Outcome>;
  /** runHooks, with the outcome itself when no plugin answered with a promise (for the per-recipient path). */
  runHooksNow<H extends HookName>(hook: H, ...args: HookArgs[H]): Outcome | Promise<Outcome>;
  /** Writes a reply from the table; `text` (a plugin's lines) replaces its own text. */
  send(reply: Reply, text?: readonly string[]): void;
  /** Writes a reply a plugin composed itself. */
  respond(code: number, ...lines: string[]): void;
  /** A reply a plugin composed, with `status` in front of each line when the session shows status codes. */
  respondStatus(code: number, status: string, ...lines: string[]): void;
  flush(): void;
  config(name: string, address?: Address): string | undefined;
  configAll(name: string, address?: Address): readonly string[];
  log(level: number, message: string, hook?: string, plugin?: string): void;
  disconnect(): Promise<void>;
  /** Ends the session now with `reply`. */
  abort(reply: Reply): Promise<void>;
  /** Waits for input until `deadline`; says why it stopped ("woken", "timeout", "eof") and writes nothing. */
  waitInput(deadline: number): Promise<"woken" | "timeout" | "eof">;
  /** Seconds a read may wait: `configured`, or less while the server is under stress. */
  readTimeout(configured: number): number;
  /** Answers an idle client's timeout (421) and closes. */
  timedOut(): Promise<void>;
  inputPending(ms: number): Promise<boolean>;
  /** Reads one AUTH continuation line. */
  readLine(): Promise<string | undefined>;
  startTls(reply?: string): Promise<void>;
  /** Starts again as a connection from `endpoints` (XCLIENT): connect hooks and greeting. */
  restartAs(endpoints: Endpoints, setup: (c: SmtpConnection) => void): Promise<void>;
  authenticated(): boolean;
  spoolDir(): string;
  tempFile(): string;
}
