/**
 * qpsmtpd's address lists (badmailfrom, badrcptto, badmailfromto): an entry is a whole address,
 * `@host`, or a regular expression (any of `/^$*+!%?\` in it), optionally followed by a reason.
 * @module
 */

export interface ListEntry {
  readonly pattern: string;
  readonly reason: string | undefined;
}

export function parseEntry(line: string): ListEntry | undefined {
  const m = /^\s*(\S+)(?:\s+(.*))?$/.exec(line);
  return m ? { pattern: m[1]!, reason: m[2]?.trim() || undefined } : undefined;
}

const REGEX_CHARS = /[/^$*+!%?\\]/;

/** List expressions compiled once each (undefined: not a valid expression). */
const expressions = new Map<string, RegExp | undefined>();

function compiled(pattern: string, ci: boolean): RegExp | undefined {
  const key = `${ci ? "i" : "-"}${pattern}`;
  if (expressions.has(key)) return expressions.get(key);
  let re: RegExp | undefined;
  try {
    re = new RegExp(pattern, ci ? "i" : "");
  } catch {
    re = undefined;
  }
  if (expressions.size >= 1000) expressions.clear(); // lists edited many times over: start again
  expressions.set(key, re);
  return re;
}

/**
 * Whether `address` (user@host) matches `pattern`. Regular expressions are tried as written (and
 * case-insensitively when `ci`); a pattern that is not a valid expression never matches.
 */
export function matchesAddress(pattern: string, address: string, host: string, ci = false): boolean {
  if (REGEX_CHARS.test(pattern)) return compiled(pattern, ci)?.test(address) ?? false;
  const p = pattern.toLowerCase();
  if (!p.includes("@")) return false;
  if (p.startsWith("@")) return p === `@${host.toLowerCase()}`;
  return p === address.toLowerCase();
}
