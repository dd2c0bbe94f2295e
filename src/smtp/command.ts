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

/**
 * The verb is the leading run of non-white-space characters; the rest follows one or more
 * spaces. Any other white space right after the verb (a tab) makes the line no command: verb
 * and rest are empty. By hand rather than by a regular expression: this runs for every line.
 */
export function splitCommand(line: string): SplitCommand {
  const n = line.length;
  let end = 0;
  while (end < n && !isWhiteSpace(line.charCodeAt(end))) end++;
  if (end < n && line.charCodeAt(end) !== 32) return { verb: "", rest: "" };
  const verb = knownVerb(line, end) ?? line.slice(0, end).toLowerCase();
  if (end === n) return { verb, rest: "" };
  let start = end + 1;
  while (start < n && line.charCodeAt(start) === 32) start++;
  return { verb, rest: line.slice(start) };
}

/** The verbs a session mostly hears, in lower case: looked up without making a string per command. */
const KNOWN_VERBS = ["helo", "ehlo", "mail", "rcpt", "data", "bdat", "rset", "noop", "quit", "auth", "vrfy", "help", "starttls"];

const KNOWN = new Set(KNOWN_VERBS);

/** Whether splitCommand's `verb` is one of the common verbs (a line that starts with one is no HTTP request or header line). */
export function isKnownVerb(verb: string): boolean {
  return KNOWN.has(verb);
}

/** `line`'s first `len` characters as one of KNOWN_VERBS, in any case; undefined when they are not one. */
function knownVerb(line: string, len: number): string | undefined {
  if (len !== 4 && len !== 8) return undefined;
  outer: for (const v of KNOWN_VERBS) {
    if (v.length !== len) continue;
    for (let i = 0; i < len; i++) {
      const c = line.charCodeAt(i);
      // ASCII letters only: `| 0x20` would also fold `@` into a backquote.
      if ((c < 65 || c > 90) && (c < 97 || c > 122)) return undefined;
      if ((c | 0x20) !== v.charCodeAt(i)) continue outer;
    }
    return v;
  }
  return undefined;
}

/** JavaScript's `\s`. */
function isWhiteSpace(c: number): boolean {
  if (c < 0x80) return c === 32 || (c >= 9 && c <= 13);
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f ||
    c === 0x205f || c === 0x3000 || c === 0xfeff;
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
