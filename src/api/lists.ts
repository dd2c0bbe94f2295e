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

/**
 * Whether `address` (user@host) matches `pattern`. Regular expressions are tried as written (and
 * case-insensitively when `ci`); a pattern that is not a valid expression never matches.
 */
export function matchesAddress(pattern: string, address: string, host: string, ci = false): boolean {
  if (REGEX_CHARS.test(pattern)) {
    try {
      return new RegExp(pattern, ci ? "i" : "").test(address);
    } catch {
      return false;
    }
  }
  const p = pattern.toLowerCase();
  if (!p.includes("@")) return false;
  if (p.startsWith("@")) return p === `@${host.toLowerCase()}`;
  return p === address.toLowerCase();
}
