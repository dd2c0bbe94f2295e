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
import {
  type Check,
  connectBackend,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LineReader,
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

/** A connection to vpopmaild, its lines read within the time limit. */
async function openConversation(d: Data, signal: AbortSignal): Promise<LineReader> {
  const sock = await connectBackend({ host: d.host, port: d.port }, d.timeoutMs, signal);
  return new LineReader({ timeoutMs: d.timeoutMs, peer: "vpopmaild", maxLine: 4096 }, sock);
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
  let c: LineReader | undefined;
  try {
    c = await openConversation(this.data, this.signal);
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
  let c: LineReader | undefined;
  const where = `${this.data.host}:${this.data.port}`;
  try {
    c = await openConversation({ ...this.data, timeoutMs: Math.min(this.data.timeoutMs, 10_000) }, this.signal);
    const greeting = await c.next();
    c.write("quit\r\n");
    return greeting.startsWith("+OK") ? [] : [`vpopmaild at ${where} greets with ${greeting.slice(0, 100)}`];
  } catch (e) {
    return [`vpopmaild at ${where} does not answer: ${(e as Error).message}`];
  } finally {
    c?.close();
  }
};
