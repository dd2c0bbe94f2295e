/**
 * The `*_parse` hooks: a plugin may return `[OK, parser]` to parse a command's argument line
 * itself (qpsmtpd's Qpsmtpd::Command hook).
 * @module
 */
import { OK } from "../api/codes.ts";
import type { LineParser } from "../api/hooks.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";

/**
 * Runs a `*_parse` hook: a plugin may return `[OK, parser]`, whose result replaces the default
 * split. Returns the parts, `[]` for "use the default", or undefined after a 501.
 */
export async function parseWith(
  s: SmtpSession,
  hook: "helo_parse" | "ehlo_parse" | "mail_parse" | "rcpt_parse" | "auth_parse",
  verb: string,
  rest: string,
): Promise<string[] | undefined> {
  if (!s.registry.has(hook)) return [];
  const r = await s.runHooks(hook, rest);
  if (typeof r.value !== "function") return [];
  const out = (r.value as LineParser)(verb, rest);
  if (out[0] !== OK) {
    s.send(out[1] === undefined ? REPLIES.syntaxError : REPLIES.parserRefused(out[1]));
    return undefined;
  }
  return out.slice(1).map(String);
}
