/**
 * auth/auth_vpopmaild: checks AUTH PLAIN and LOGIN against vpopmaild, vpopmail's daemon, with
 * its line protocol: the daemon greets `+OK`, the plugin sends `login USER PASSWORD`, and the
 * first line of the answer says it: `+OK` (then `+OK+` and the account's details, which are not
 * read) or `-ERR code text`.
 *
 * Hooks: auth-plain, auth-login. Config files: none. Notes: none.
 * Arguments (key/value, qpsmtpd's): `host` (localhost), `port` (89);
 * `vpopmaild_timeout SECONDS` (10): the time limit for connecting and for each answer. Keep it
 * below `plugin_timeout` (30): a call cut off there counts as declined, which ends in 535.
 * Any other word (but the engine's `timeout` and `loglevel`) stops start-up.
 * Replies: OK (235) on `+OK`; DENY (535 5.7.8) on `-ERR`; DENYSOFT (454 4.7.0) when vpopmaild
 * cannot answer: down, refusing, silent, closing, a greeting other than `+OK`, or an answer that
 * is neither. The protocol splits words on white space and ends commands at a line end, so a
 * user name or password with white space or a control character (which could add words or a
 * second command), a NUL, an empty password, or bytes that were not UTF-8 (the core hands them
 * on as U+FFFD, not as sent) is refused (DENY) without asking. Each attempt is its own
 * connection. Passwords are never logged, and the account details vpopmaild sends after `+OK+`
 * (its clear-text password among them) are never read.
 * Failure policy: closed. OK only when vpopmaild said yes; when it cannot answer, 454 (the
 * client retries later), never 235 and never 535.
 */
import * as net from "node:net";
import {
  type Check,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  OK,
  parsePluginArgs,
  type Result,
} from "qpsmtpd";

interface Data {
  host: string;
  port: number;
  timeoutMs: number;
}

export const init: Init<Data> = function (_server, ...args) {
  const o = parsePluginArgs("auth/auth_vpopmaild", args, { values: ["host", "port", "vpopmaild_timeout"] }).values;
  const host = o["host"] ?? "localhost";
  if (!/^[\w.:-]+$/.test(host)) throw new Error(`auth/auth_vpopmaild: bad host "${host}"`);
  const port = o["port"] ?? "89";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`auth/auth_vpopmaild: bad port "${port}"`);
  const seconds = o["vpopmaild_timeout"] ?? "10";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`auth/auth_vpopmaild: bad vpopmaild_timeout "${seconds}"`);
  this.data.host = host;
  this.data.port = Number(port);
  this.data.timeoutMs = Number(seconds) * 1000;
};

/** One vpopmaild conversation: lines in (bounded, each within the time limit), lines out. */
class Conversation {
  readonly #sock: net.Socket;
  readonly #timeoutMs: number;
  #buf = "";
  #lines: string[] = [];
  #waiter: ((line: string | Error) => void) | undefined;
  #error: Error | undefined;

  private constructor(sock: net.Socket, timeoutMs: number) {
    this.#sock = sock;
    this.#timeoutMs = timeoutMs;
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.#buf += d;
      let i: number;
      while ((i = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, i).replace(/\r$/, "");
        this.#buf = this.#buf.slice(i + 1);
        if (this.#waiter) this.#waiter(line);
        else this.#lines.push(line);
      }
      if (this.#buf.length > 4096) sock.destroy(new Error("answer line too long"));
    });
    const fail = (e: Error): void => {
      this.#error ??= e;
      this.#waiter?.(this.#error);
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("connection closed by vpopmaild")));
  }

  static open(d: Data, signal: AbortSignal): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(d.port, d.host);
      const onAbort = (): void => void sock.destroy(new Error("the plugin's time limit passed"));
      signal.addEventListener("abort", onAbort, { once: true });
      sock.once("close", () => signal.removeEventListener("abort", onAbort));
      const timer = setTimeout(() => sock.destroy(new Error("connect timed out")), d.timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        resolve(new Conversation(sock, d.timeoutMs));
      });
      sock.once("error", (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  next(): Promise<string> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#sock.destroy(new Error("timed out waiting for vpopmaild")), this.#timeoutMs);
      this.#waiter = (l) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        if (l instanceof Error) reject(l);
        else resolve(l);
      };
    });
  }

  write(s: string): void {
    this.#sock.write(s);
  }

  /** Ends the connection once what was written has gone, and drops it if that takes long. */
  close(): void {
    this.#sock.end();
    setTimeout(() => this.#sock.destroy(), 1000).unref?.();
  }
}

/** Why a credential cannot go into `login USER PASSWORD` as it is, or undefined. */
function unusable(user: string, pass: string): string | undefined {
  if (user === "" || pass === "") return "an empty user name or password";
  if (user.includes("\uFFFD") || pass.includes("\uFFFD")) return "bytes that are not UTF-8";
  // deno-lint-ignore no-control-regex -- control characters are what must not go on the line
  if (/[ \x00-\x1f\x7f]/.test(user + pass)) return "white space or a control character";
  return undefined;
}

export const hook_auth_plain: Hooks<Data>["auth-plain"] = async function (_txn, _mechanism, user, passClear): Promise<Result> {
  if (passClear === undefined) return DECLINED;
  const bad = unusable(user, passClear);
  if (bad) {
    this.log(LOGWARN, `refusing ${user}: the credentials hold ${bad}`);
    return DENY;
  }
  let c: Conversation | undefined;
  try {
    c = await Conversation.open(this.data, this.signal);
    const greeting = await c.next();
    if (!greeting.startsWith("+OK")) return unavailable(this, `greeting ${greeting.slice(0, 200)}`);
    c.write(`login ${user} ${passClear}\r\n`);
    const answer = await c.next();
    if (answer.startsWith("+OK")) {
      c.write("quit\r\n");
      this.log(LOGINFO, `${user} authenticated by vpopmaild`);
      return OK;
    }
    if (answer.startsWith("-ERR")) {
      this.log(LOGINFO, `vpopmaild refused ${user}: ${answer.slice(0, 200)}`);
      return DENY;
    }
    return unavailable(this, `unexpected answer ${answer.slice(0, 200)}`);
  } catch (e) {
    return unavailable(this, (e as Error).message);
  } finally {
    c?.close();
  }
};
export const hook_auth_login = hook_auth_plain;

function unavailable(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `vpopmaild at ${p.data.host}:${p.data.port} cannot answer: ${why}`);
  return DENYSOFT; // the core answers 454 4.7.0
}

/** `qpsmtpd check`: vpopmaild greets with +OK. */
export const check: Check<Data> = async function () {
  let c: Conversation | undefined;
  const where = `${this.data.host}:${this.data.port}`;
  try {
    c = await Conversation.open({ ...this.data, timeoutMs: Math.min(this.data.timeoutMs, 10_000) }, this.signal);
    const greeting = await c.next();
    c.write("quit\r\n");
    return greeting.startsWith("+OK") ? [] : [`vpopmaild at ${where} greets with ${greeting.slice(0, 100)}`];
  } catch (e) {
    return [`vpopmaild at ${where} does not answer: ${(e as Error).message}`];
  } finally {
    c?.close();
  }
};
