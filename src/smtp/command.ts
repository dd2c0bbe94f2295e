/**
 * Command-line parsing: verb and argument, the MAIL/RCPT path argument and ESMTP parameters.
 * @module
 */

import type { Params } from "../api/hooks.ts";

export interface SplitCommand {
  /** Lower-cased verb. */
  readonly verb: string;
  /** Everything after the first run of spaces. */
  readonly rest: string;
}

export function splitCommand(line: string): SplitCommand {
  const m = /^(\S*)(?: +(.*))?$/s.exec(line);
  return { verb: (m?.[1] ?? "").toLowerCase(), rest: m?.[2] ?? "" };
}

/** A verb as qpsmtpd accepts it: 1 to 12 word characters. */
export function isVerb(v: string): boolean {
  return /^\w{1,12}$/.test(v);
}

/**
 * Lines that show a non-SMTP client (HTTP) or message data parsed as commands; the session
 * ends at once on these.
 */
export function isForbiddenCommand(line: string): boolean {
  return /^(?:GET|POST|HEAD|PUT|CONNECT|OPTIONS|DELETE) /i.test(line) || /^[A-Za-z][A-Za-z0-9-]*:(?:\s|$)/.test(line);
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const VALUE = /^[\x21-\x3c\x3e-\x7e]+$/;

/** Parses ESMTP parameter words; a string is an error message. */
export function parseParams(words: readonly string[]): Params | string {
  const out: Params = Object.create(null);
  for (const w of words) {
    const eq = w.indexOf("=");
    const key = (eq < 0 ? w : w.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : w.slice(eq + 1);
    if (!KEYWORD.test(key)) return "Syntax error in parameters";
    if (value !== undefined && !VALUE.test(value)) return "Syntax error in parameters";
    if (key in out) return `Duplicate parameter ${key.toUpperCase()}`;
    out[key] = value;
  }
  return out;
}
