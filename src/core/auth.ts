/**
 * SMTP AUTH (RFC 4954) as qpsmtpd does it: PLAIN, LOGIN and CRAM-MD5, decided by the
 * `auth-<mech>` hooks and then the generic `auth` hook.
 * @module
 */
import { randomBytes } from "node:crypto";
import { DECLINED, DENYSOFT, DENYSOFT_DISCONNECT, LOGINFO, OK } from "../api/codes.ts";
import type { HookName } from "../api/hook_names.ts";
import { parseWith } from "./parse_hooks.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";

const MECHS = ["PLAIN", "LOGIN", "CRAM-MD5"] as const;
type Mech = (typeof MECHS)[number];

/** TLS is required before AUTH and not yet active: `tls_before_auth`, and a plugin offers TLS. */
function authNeedsTls(s: SmtpSession): boolean {
  return !s.connection.tls && s.registry.tlsContext !== undefined && s.host.configDir.bool("tls_before_auth");
}

/** Each mechanism with the name of its own hook (made once, not on every EHLO). */
const MECH_HOOKS = MECHS.map((m) => [m, `auth-${m.toLowerCase()}` as HookName] as const);

/** The mechanisms to advertise: all three when a generic `auth` hook exists, else those hooked. */
export function advertisedMechanisms(s: SmtpSession): Mech[] {
  if (authNeedsTls(s)) return [];
  if (s.registry.has("auth")) return [...MECHS];
  const out: Mech[] = [];
  for (const [m, hook] of MECH_HOOKS) if (s.registry.has(hook)) out.push(m);
  return out;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Base64, then UTF-8 (RFC 4616). Bytes that are not UTF-8 are refused rather than turned into
 * U+FFFD, which would make different passwords look the same to a backend.
 */
function decode(b64: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return undefined;
  try {
    return UTF8.decode(Buffer.from(b64, "base64"));
  } catch {
    return undefined;
  }
}

const encode = (s: string): string => Buffer.from(s, "utf8").toString("base64");

interface Credentials {
  user: string;
  passClear?: string;
  passHash?: string;
  ticket?: string;
}

export async function cmdAuth(s: SmtpSession, rest: string): Promise<void> {
  if (s.authenticated()) {
    s.send(REPLIES.alreadyAuthenticated);
    return;
  }
  if (authNeedsTls(s)) {
    s.send(REPLIES.tlsBeforeAuth);
    return;
  }
  if (s.hasTransaction() && s.transaction.sender()) {
    s.send(REPLIES.authInTransaction);
    return;
  }
  // qpsmtpd's auth_parse: a plugin may split the line itself ([mechanism, initial response]).
  const parsed = await parseWith(s, "auth_parse", "auth", rest);
  if (!parsed) return;
  const [mechArg = "", initial, extra] = parsed.length ? parsed : rest.split(" ");
  const mech = mechArg.toUpperCase() as Mech;
  if (extra !== undefined || !advertisedMechanisms(s).includes(mech)) {
    s.send(REPLIES.unknownMechanism(mechArg));
    return;
  }
  const creds = await readCredentials(s, mech, initial);
  if (!creds) return;
  let r = await s.runHooks(`auth-${mech.toLowerCase()}` as "auth-plain", mech, creds.user, creds.passClear, creds.passHash, creds.ticket);
  let timedOut = r.timedOut === true;
  if (r.code === DECLINED || r.code === 0) {
    r = await s.runHooks("auth", mech, creds.user, creds.passClear, creds.passHash, creds.ticket);
    timedOut ||= r.timedOut === true;
  }
  const detail = r.msg.length ? ` - ${r.msg.join(" ")}` : "";
  if (r.code === OK) {
    s.authUser = creds.user;
    s.authMechanism = mech;
    s.connection.relay_client(true);
    s.connection.notes("naughty", undefined);
    s.log(LOGINFO, `authentication successful for ${creds.user} (${mech})`);
    s.send(REPLIES.authOk(`${mech} authentication successful for ${creds.user}${detail}`));
  } else if (r.code === DENYSOFT || r.code === DENYSOFT_DISCONNECT || (timedOut && (r.code === DECLINED || r.code === 0))) {
    // The backend could not say (down, timed out): a temporary failure, not a wrong password.
    s.log(LOGINFO, `authentication for ${creds.user} (${mech}) could not be checked now`);
    s.send(REPLIES.authTemporaryFailure, r.msg);
    if (r.code === DENYSOFT_DISCONNECT) await s.disconnect();
  } else {
    s.log(LOGINFO, `authentication failed for ${creds.user} (${mech}) from ${s.connection.remote_ip}`);
    s.send(REPLIES.authFailed(`${mech} authentication failed for ${creds.user} from ${s.connection.remote_ip}${detail}`));
    // Password guessing gets a few tries per connection, then the connection.
    const failures = (s.connection.notes("auth_failures") ?? 0) + 1;
    s.connection.notes("auth_failures", failures);
    if (failures >= s.limits.maxAuthFailures) {
      s.send(REPLIES.tooManyAuthFailures);
      await s.disconnect();
    }
  }
}

/** Runs the SASL exchange; undefined after it answered an error itself. */
async function readCredentials(s: SmtpSession, mech: Mech, initial: string | undefined): Promise<Credentials | undefined> {
  const ask = async (prompt: string): Promise<string | undefined> => {
    s.send(REPLIES.authChallenge(prompt));
    const line = await s.readLine();
    if (line === undefined) return undefined;
    if (line === "*") {
      s.send(REPLIES.authCanceled);
      return undefined;
    }
    return line;
  };
  const bad = (): undefined => {
    s.send(REPLIES.authUndecodable);
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
      s.send(REPLIES.authInvalid);
      return undefined;
    }
    if (authzid !== "" && authzid !== user) {
      s.send(REPLIES.authInvalidFor(user));
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
  const ticket = `<${randomBytes(8).toString("hex")}.${Math.floor(s.clock.now() / 1000).toString(16)}@${s.me}>`;
  const l = await ask(encode(ticket));
  if (l === undefined) return undefined;
  const text = decode(l);
  const m = text === undefined ? null : /^(\S+) ([0-9a-f]{32})$/i.exec(text);
  if (!m) {
    s.send(REPLIES.authBadCramResponse);
    return undefined;
  }
  return { user: m[1]!, passHash: m[2]!.toLowerCase(), ticket };
}
