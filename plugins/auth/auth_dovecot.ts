/**
 * auth/auth_dovecot: checks AUTH PLAIN and LOGIN against Dovecot's authentication service, the
 * way Postfix's `smtpd_sasl_type = dovecot` does: Dovecot's auth protocol 1.2 over its
 * `auth-client` unix socket or a TCP `inet_listener`.
 *
 * Hooks: auth-plain, auth-login. Config files: none. Notes: none.
 * Arguments (key/value): `socket PATH` (default `/var/run/dovecot/auth-client`), or `host HOST`
 * with `port PORT`; `service NAME` (`smtp`: what Dovecot's passdb sees as `%s`);
 * `dovecot_timeout SECONDS` (10): the time limit for connecting and for each answer. Keep it
 * below `plugin_timeout` (30): a call cut off there counts as declined, which ends in 535.
 * Any other word (but the engine's `timeout` and `loglevel`) stops start-up.
 * Each attempt is its own connection, so a slow answer for one client holds up no other. The
 * client's mechanism is used when Dovecot offers it (PLAIN with the initial response, LOGIN
 * through CONT), else the other one; Dovecot gets `rip`/`lip` (its brute-force penalty is per
 * client address) and `secured` when the SMTP session is under TLS.
 * Replies: OK (235) when Dovecot answers OK; DENY (535 5.7.8) when it answers FAIL; DENYSOFT
 * (454 4.7.0) when it answers FAIL with `temp`, or cannot answer: down, refusing, silent past
 * `dovecot_timeout`, closing, or speaking something else. A user name or password with a NUL (it
 * would split the PLAIN message) or with bytes that were not UTF-8 (the core hands them on as
 * U+FFFD, so the password Dovecot would see is not the one the client sent) is refused (DENY)
 * without asking. Passwords are never logged.
 * Failure policy: closed. OK only when Dovecot said yes; when it cannot answer, 454 (the
 * client retries later), never 235 and never 535.
 */
import {
  type BackendTarget,
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
  target: BackendTarget;
  where: string;
  service: string;
  timeoutMs: number;
}

export const init: Init<Data> = function (_server, ...args) {
  const o = parsePluginArgs("auth/auth_dovecot", args, { values: ["socket", "host", "port", "service", "dovecot_timeout"] }).values;
  if (o["socket"] !== undefined && o["host"] !== undefined) throw new Error("auth/auth_dovecot: give socket or host, not both");
  const port = o["port"] ?? "";
  if (o["host"] !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) > 65535)) {
    throw new Error(`auth/auth_dovecot: host needs a port, not "${port}"`);
  }
  const seconds = o["dovecot_timeout"] ?? "10";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`auth/auth_dovecot: bad dovecot_timeout "${seconds}"`);
  const service = o["service"] ?? "smtp";
  if (!/^[\w.-]+$/.test(service)) throw new Error(`auth/auth_dovecot: bad service "${service}"`);
  const path = o["socket"] ?? (o["host"] === undefined ? "/var/run/dovecot/auth-client" : undefined);
  this.data.target = path !== undefined ? { path } : { host: o["host"]!, port: Number(port) };
  this.data.where = path ?? `${o["host"]}:${port}`;
  this.data.service = service;
  this.data.timeoutMs = Number(seconds) * 1000;
};

/** A connection to the auth service, its lines read within `timeoutMs`. */
async function openReader(target: BackendTarget, timeoutMs: number, signal: AbortSignal): Promise<LineReader> {
  return new LineReader({ timeoutMs, peer: "the auth service" }, await connectBackend(target, timeoutMs, signal));
}

/** The handshake: our VERSION and CPID, then the service's lines up to DONE; the mechanisms it offers. */
async function handshake(r: LineReader): Promise<Set<string>> {
  r.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`);
  const mechs = new Set<string>();
  for (let n = 0; n < 1000; n++) {
    const f = (await r.next()).split("\t");
    if (f[0] === "VERSION" && f[1] !== "1") throw new Error(`auth protocol version ${f[1]}, not 1`);
    if (f[0] === "MECH" && f[1]) mechs.add(f[1].toUpperCase());
    if (f[0] === "DONE") return mechs;
  }
  throw new Error("no DONE in the handshake");
}

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

/** Why a credential cannot be handed on faithfully, or undefined. */
function unusable(user: string, pass: string): string | undefined {
  if (user.includes("\0") || pass.includes("\0")) return "a NUL byte";
  if (user.includes("\uFFFD") || pass.includes("\uFFFD")) return "bytes that are not UTF-8";
  return undefined;
}

type Answer = { kind: "ok" } | { kind: "fail"; temp: boolean; reason: string };

async function authenticate(p: HookContext<Data>, r: LineReader, mech: "PLAIN" | "LOGIN", user: string, pass: string): Promise<Answer> {
  const c = p.connection;
  const fields = [`service=${p.data.service}`, "nologin", `lip=${c.local_ip}`, `rip=${c.remote_ip}`];
  if (c.tls) fields.push("secured");
  if (mech === "PLAIN") fields.push(`resp=${b64(`\0${user}\0${pass}`)}`);
  r.write(`AUTH\t1\t${mech}\t${fields.join("\t")}\n`);
  const login = [user, pass]; // the LOGIN mechanism asks for these, in this order
  for (;;) {
    const f = (await r.next()).split("\t");
    if (f[1] !== "1") throw new Error(`unexpected answer ${f[0]}`);
    if (f[0] === "OK") return { kind: "ok" };
    if (f[0] === "FAIL") {
      const params = f.slice(2);
      const reason = params.find((x) => x.startsWith("reason="))?.slice(7) ?? "";
      return { kind: "fail", temp: params.includes("temp"), reason };
    }
    const next = login.shift();
    if (f[0] !== "CONT" || next === undefined) throw new Error(`unexpected answer ${f[0]}`);
    r.write(`CONT\t1\t${b64(next)}\n`);
  }
}

export const hook_auth_plain: Hooks<Data>["auth-plain"] = async function (_txn, mechanism, user, passClear): Promise<Result> {
  if (passClear === undefined) return DECLINED;
  const bad = unusable(user, passClear);
  if (bad) {
    this.log(LOGWARN, `refusing ${user}: the credentials hold ${bad}`);
    return DENY;
  }
  let r: LineReader | undefined;
  try {
    r = await openReader(this.data.target, this.data.timeoutMs, this.signal);
    const mechs = await handshake(r);
    const wanted = mechanism.toUpperCase() === "LOGIN" ? "LOGIN" : "PLAIN";
    const mech = mechs.has(wanted) ? wanted : mechs.has("PLAIN") ? "PLAIN" : mechs.has("LOGIN") ? "LOGIN" : undefined;
    if (!mech) return unavailable(this, `offers neither PLAIN nor LOGIN (${[...mechs].join(" ")})`);
    const a = await authenticate(this, r, mech, user, passClear);
    if (a.kind === "ok") {
      this.log(LOGINFO, `${user} authenticated by Dovecot (${mech})`);
      return OK;
    }
    if (a.temp) return unavailable(this, `temporary failure for ${user}${a.reason ? `: ${a.reason}` : ""}`);
    this.log(LOGINFO, `Dovecot refused ${user}${a.reason ? `: ${a.reason}` : ""}`);
    return DENY;
  } catch (e) {
    return unavailable(this, (e as Error).message);
  } finally {
    r?.close();
  }
};
export const hook_auth_login = hook_auth_plain;

function unavailable(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `Dovecot auth at ${p.data.where} cannot answer: ${why}`);
  return DENYSOFT; // the core answers 454 4.7.0 Temporary authentication failure
}

/** `qpsmtpd check`: the auth service does its handshake and offers PLAIN or LOGIN. */
export const check: Check<Data> = async function () {
  let r: LineReader | undefined;
  try {
    r = await openReader(this.data.target, Math.min(this.data.timeoutMs, 10_000), this.signal);
    const mechs = await handshake(r);
    return mechs.has("PLAIN") || mechs.has("LOGIN") ? [] : [`Dovecot auth at ${this.data.where} offers neither PLAIN nor LOGIN`];
  } catch (e) {
    return [`Dovecot auth at ${this.data.where} does not answer: ${(e as Error).message}`];
  } finally {
    r?.close();
  }
};
