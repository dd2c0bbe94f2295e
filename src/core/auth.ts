/**
 * SMTP AUTH (RFC 4954) as qpsmtpd does it: PLAIN, LOGIN and CRAM-MD5, decided by the
 * `auth-<mech>` hooks and then the generic `auth` hook.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { DECLINED, DENY, LOGINFO, OK, type ReturnCode } from "./codes.ts";
import type { HookName } from "./hooks.ts";
import type { Session } from "./session.ts";

const MECHS = ["PLAIN", "LOGIN", "CRAM-MD5"] as const;
type Mech = (typeof MECHS)[number];

/** TLS is required before AUTH and not yet active: `tls_before_auth` with the tls plugin loaded. */
function authNeedsTls(s: Session): boolean {
  return !s.connection.tls && s.registry.find("tls") !== undefined && s.registry.host.configDir.bool("tls_before_auth");
}

/** The mechanisms to advertise: all three when a generic `auth` hook exists, else those hooked. */
export function advertisedMechanisms(s: Session): Mech[] {
  if (authNeedsTls(s)) return [];
  if (s.registry.has("auth")) return [...MECHS];
  return MECHS.filter((m) => s.registry.has(`auth-${m.toLowerCase()}` as HookName));
}

function decode(b64: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return undefined;
  return Buffer.from(b64, "base64").toString("utf8");
}

const encode = (s: string): string => Buffer.from(s, "utf8").toString("base64");

interface Credentials {
  user: string;
  passClear?: string;
  passHash?: string;
  ticket?: string;
}

export async function cmdAuth(s: Session, rest: string): Promise<void> {
  if (s.authenticated()) {
    s.respond(503, "but you already said AUTH ...");
    return;
  }
  if (authNeedsTls(s)) {
    s.respond(503, "SSL/TLS required before AUTH");
    return;
  }
  if (s.has_transaction() && s.transaction.sender()) {
    s.respond(503, "5.5.1 AUTH not permitted during a mail transaction");
    return;
  }
  const [mechArg = "", initial, extra] = rest.split(" ");
  const mech = mechArg.toUpperCase() as Mech;
  if (extra !== undefined || !advertisedMechanisms(s).includes(mech)) {
    s.respond(504, `Unimplemented authentication mechanism: ${mechArg}`);
    return;
  }
  const creds = await readCredentials(s, mech, initial);
  if (!creds) return;
  let r = await s.run_hooks(`auth-${mech.toLowerCase()}` as "auth-plain", mech, creds.user, creds.passClear, creds.passHash, creds.ticket);
  if (r.code === DECLINED || r.code === 0) {
    r = await s.run_hooks("auth", mech, creds.user, creds.passClear, creds.passHash, creds.ticket);
  }
  const detail = r.msg.length ? ` - ${r.msg.join(" ")}` : "";
  if (r.code === OK) {
    s.auth_user = creds.user;
    s.auth_mechanism = mech;
    s.connection.relay_client(true);
    s.connection.notes("naughty", undefined);
    s.log(LOGINFO, `authentication successful for ${creds.user} (${mech})`);
    s.respond(235, `${mech} authentication successful for ${creds.user}${detail}`);
  } else {
    s.log(LOGINFO, `authentication failed for ${creds.user} (${mech}) from ${s.connection.remote_ip}`);
    s.respond(535, `${mech} authentication failed for ${creds.user} from ${s.connection.remote_ip}${detail}`);
    // Password guessing gets a few tries per connection, then the connection.
    const failures = (Number(s.connection.notes("auth_failures")) || 0) + 1;
    s.connection.notes("auth_failures", failures);
    if (failures >= s.limits.maxAuthFailures) {
      s.respond(421, "4.7.0 Too many failed authentication attempts, closing connection");
      await s.disconnect();
    }
  }
}

/** Runs the SASL exchange; undefined after it answered an error itself. */
async function readCredentials(s: Session, mech: Mech, initial: string | undefined): Promise<Credentials | undefined> {
  const ask = async (prompt: string): Promise<string | undefined> => {
    s.respond(334, prompt);
    const line = await s.read_line();
    if (line === undefined) return undefined;
    if (line === "*") {
      s.respond(501, "Authentication canceled");
      return undefined;
    }
    return line;
  };
  const bad = (): undefined => {
    s.respond(501, "5.5.2 Cannot decode response");
    return undefined;
  };
  if (mech === "PLAIN") {
    const b64 = initial === undefined ? await ask("") : initial === "=" ? "" : initial;
    if (b64 === undefined) return undefined;
    const text = decode(b64);
    if (text === undefined) return bad();
    const parts = text.split("\0");
    if (parts.length !== 3) return bad();
    const [authzid, user, pass] = parts as [string, string, string];
    if (user === "") {
      s.respond(535, "Authentication invalid");
      return undefined;
    }
    if (authzid !== "" && authzid !== user) {
      s.respond(535, `Authentication invalid for ${user}`);
      return undefined;
    }
    return { user, passClear: pass };
  }
  if (mech === "LOGIN") {
    let user: string | undefined;
    if (initial !== undefined) user = decode(initial);
    else {
      const l = await ask("VXNlcm5hbWU6");
      if (l === undefined) return undefined;
      user = decode(l);
    }
    if (user === undefined) return bad();
    const p = await ask("UGFzc3dvcmQ6");
    if (p === undefined) return undefined;
    const pass = decode(p);
    if (pass === undefined) return bad();
    return { user, passClear: pass };
  }
  // CRAM-MD5
  const ticket = `<${randomBytes(8).toString("hex")}.${Math.floor(Date.now() / 1000).toString(16)}@${s.me}>`;
  const l = await ask(encode(ticket));
  if (l === undefined) return undefined;
  const text = decode(l);
  const m = text === undefined ? null : /^(\S+) ([0-9a-f]{32})$/i.exec(text);
  if (!m) {
    s.respond(504, "Invalid authentication string");
    return undefined;
  }
  return { user: m[1]!, passHash: m[2]!.toLowerCase(), ticket };
}

/**
 * qpsmtpd's validate_password for auth plugins: compares the attempt with the stored clear-text
 * password, or the CRAM-MD5 response with HMAC-MD5(ticket, stored password).
 */
export function validate_password(opts: {
  srcClear?: string | undefined;
  attemptClear?: string | undefined;
  attemptHash?: string | undefined;
  ticket?: string | undefined;
  deny?: ReturnCode;
}): ReturnCode {
  const deny = opts.deny ?? DENY;
  if (opts.srcClear === undefined) return DECLINED;
  if (opts.attemptClear !== undefined) return safeEqual(opts.attemptClear, opts.srcClear) ? OK : deny;
  if (opts.attemptHash !== undefined && opts.ticket !== undefined) {
    const want = createHmac("md5", opts.srcClear).update(opts.ticket).digest("hex");
    return safeEqual(opts.attemptHash.toLowerCase(), want) ? OK : deny;
  }
  return DECLINED;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
