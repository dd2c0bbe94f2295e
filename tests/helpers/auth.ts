/** AUTH exchanges for the auth-backend plugin tests (auth_dovecot, auth_imap, auth_ldap_bind, auth_vpopmaild). */
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";

const b64 = (b: string | Uint8Array): string => Buffer.from(typeof b === "string" ? Buffer.from(b, "utf8") : b).toString("base64");

/** A session with `plugin` loaded that has said EHLO. */
export async function authSession(plugin: string, opts: Partial<TestSessionOptions> = {}): Promise<TestSession> {
  const t = await TestSession.start({ plugins: [plugin], ...opts });
  await t.command("EHLO client.example");
  return t;
}

/** AUTH PLAIN with the password as given (a string is sent as UTF-8, bytes as they are); the reply code. */
export async function authPlain(t: TestSession, user: string, pass: string | Uint8Array): Promise<number> {
  const bytes = Buffer.concat([Buffer.from(`\0${user}\0`, "utf8"), typeof pass === "string" ? Buffer.from(pass, "utf8") : pass]);
  return (await t.command(`AUTH PLAIN ${b64(bytes)}`)).code;
}

/** AUTH LOGIN: user, then password (which may hold any bytes, NUL included); the final reply code. */
export async function authLogin(t: TestSession, user: string, pass: string | Uint8Array): Promise<number> {
  const r1 = await t.command("AUTH LOGIN");
  if (r1.code !== 334) return r1.code;
  const r2 = await t.command(b64(user));
  if (r2.code !== 334) return r2.code;
  return (await t.command(b64(pass))).code;
}

/** One AUTH PLAIN in a new session; the reply code and the session. */
export async function tryPlain(plugin: string, user: string, pass: string | Uint8Array, opts: Partial<TestSessionOptions> = {}) {
  const t = await authSession(plugin, opts);
  return { code: await authPlain(t, user, pass), t };
}

/** Whether any log line of the session contains `secret`. */
export function logsMention(t: TestSession, secret: string): boolean {
  return t.logs.some((l) => l.message.includes(secret));
}
