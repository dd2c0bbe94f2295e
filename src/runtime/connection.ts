/**
 * What the server gets from a listener for each client, whichever sockets the runtime has:
 * the connection before its session, and the transport the session writes to.
 * @module
 */

/** A connection the listener accepted, before its session starts. */
export interface AcceptedConnection {
  /**
   * Reads what a client sends before the protocol starts (a PROXY header): each chunk goes to
   * `take` until it returns something other than undefined, which this resolves with; or
   * "timeout" when `timeUp` settles first (the caller's clock), or "closed" when the client left
   * first. Reading then pauses until `open`; bytes that `take` did not use go back with `unread`.
   */
  readPreamble<T>(take: (chunk: Uint8Array) => T | undefined, timeUp: Promise<unknown>): Promise<T | "timeout" | "closed">;
  /** Bytes read with `readPreamble` that belong to the session: it gets them first, in order. */
  unread(bytes: Uint8Array): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Writes `text` and closes (a refusal before any session). */
  refuse(text: string): void;
  destroy(): void;
  /** Implicit TLS: the handshake before anything is said. Resolves with the cipher name. */
  secure(context: unknown): Promise<string>;
  /** The transport a session writes to; the client's bytes reach the session once it calls `start`. */
  open(): SessionTransport;
}

/** What a session writes to: output, back-pressure, STARTTLS and close (the core's Transport). */
export interface SessionTransport {
  /**
   * Delivers the client's bytes to `input` from the next microtask on: first those held since
   * the accept (or a preamble), then the socket's own, or the end that came meanwhile.
   */
  start(input: InputHandlers): void;
  write(data: string): void;
  /** Bytes written that the client has not been sent yet. */
  backlog(): number;
  /** Resolves when the backlog has been sent (or the connection is gone). */
  drained(): Promise<void>;
  /** Closes at once, dropping what is unsent. */
  abort(): void;
  /** Sends what is pending, then closes; a client that keeps its side open is cut after 2 s. */
  close(): void;
  /** Stops reading from the client until `resume` (back-pressure). */
  pause(): void;
  resume(): void;
  /** Upgrades to TLS (STARTTLS, after the 220 was written); resolves with the cipher name. */
  startTls(context: unknown): Promise<string>;
}

/** Where a connection's input goes (a Session is one). */
export interface InputHandlers {
  feed(chunk: Uint8Array): void;
  /** The client closed its side, or the socket failed. */
  end(): void;
}
