/**
 * RFC 5321 paths and mailboxes with qpsmtpd's Address semantics, parsed strictly.
 *
 * Unlike Perl qpsmtpd, an unquoted local part must be a dot-string, domain labels must be real
 * labels, IPv4 literals are range-checked and the RFC's length limits apply. Source routes are
 * accepted and dropped, so only the final mailbox counts.
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";
import { domainToASCII } from "node:url";
import type { RcptDsn } from "./esmtp.ts";
import { accessNote, type AddressNotes, notesStore, type NoteValue } from "./notes.ts";

const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
/** Dot-separated labels of 1 to 63 letters, digits and inner hyphens (the length of the whole is checked apart). */
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** RFC 6531 local parts: atext plus any non-ASCII character. */
const UTF8_DOT_STRING =
  /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[\u0080-\u{10ffff}])+(?:\.(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[\u0080-\u{10ffff}])+)*$/u;
const GENERAL_LITERAL = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/;

export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;
export const MAX_PATH = 256;

export function isDomain(s: string): boolean {
  return s.length > 0 && s.length <= MAX_DOMAIN && DOMAIN.test(s);
}

/**
 * A domain in its ASCII form (IDNA a-labels, lower case), so `bücher.example` and
 * `xn--bcher-kva.example` compare as one; "" when it is not a valid domain.
 */
export function asciiDomain(s: string): string {
  if (!/[\u0080-\uffff]/.test(s)) return s.toLowerCase();
  const a = domainToASCII(s);
  return isDomain(a) ? a.toLowerCase() : "";
}

/** Whether `s` holds any non-ASCII character. */
export function isUtf8(s: string): boolean {
  return /[\u0080-\uffff]/.test(s);
}

/** `[1.2.3.4]`, `[IPv6:…]` or a general `[tag:content]` literal. */
export function isAddressLiteral(s: string): boolean {
  if (s.length < 3 || s[0] !== "[" || s[s.length - 1] !== "]") return false;
  const inner = s.slice(1, -1);
  if (/^IPv6:/i.test(inner)) return isIPv6(inner.slice(5));
  if (/^[0-9.]+$/.test(inner)) return isIPv4(inner);
  return GENERAL_LITERAL.test(inner) && !/^IPv6:/i.test(inner);
}

/** Whether `s` takes more than `max` bytes in UTF-8, measured only when its length leaves it open. */
function longerThan(s: string, max: number): boolean {
  if (s.length > max) return true;
  return s.length * 3 > max && Buffer.byteLength(s) > max;
}

/** Parses a quoted-string starting at `s[i]` (a `"`); returns its value and the index after it. */
function readQuoted(s: string, i: number, utf8: boolean): { value: string; end: number } | undefined {
  let value = "";
  for (let j = i + 1; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x22) return { value, end: j + 1 };
    if (ch === 0x5c) {
      const next = s.charCodeAt(j + 1);
      if (!(next >= 32 && next <= 126)) return undefined;
      value += s[++j];
    } else if ((ch >= 32 && ch <= 126) || (utf8 && ch >= 0x80)) value += s[j];
    else return undefined;
  }
  return undefined;
}

export class Address {
  /** The local part, unquoted. Empty for the null sender. */
  user: string;
  /** The domain or address literal; undefined for `<>` and `<postmaster>`. */
  host: string | undefined;
  /** A recipient's DSN parameters (NOTIFY, ORCPT), when the client gave any. */
  dsn: RcptDsn | undefined;
  /** Made at the first look at the notes: most addresses never get one. */
  #notes: Record<string, unknown> | undefined;
  #formatted: string | undefined;
  #formattedUser = "";
  #formattedHost: string | undefined;

  constructor(user: string, host?: string) {
    this.user = user;
    this.host = host;
  }

  /**
   * Parses `<path>`; undefined when it is not a valid RFC 5321 path. With `utf8` (the MAIL
   * carried SMTPUTF8) the local part may hold UTF-8 and the domain may be an IDN (RFC 6531).
   */
  static parse(path: string, opts: { readonly utf8?: boolean } = {}): Address | undefined {
    if (path[0] !== "<" || path[path.length - 1] !== ">" || longerThan(path, MAX_PATH)) return undefined;
    let s = path.slice(1, -1);
    if (s === "") return new Address("");
    if (/^postmaster$/i.test(s)) return new Address(s);
    if (s[0] === "@") {
      // Source route: @a,@b:mailbox. Validate and drop it.
      const colon = s.indexOf(":");
      if (colon < 0) return undefined;
      for (const hop of s.slice(0, colon).split(",")) {
        const d = hop.slice(1);
        if (hop[0] !== "@" || !(isDomain(d) || isAddressLiteral(d))) return undefined;
      }
      s = s.slice(colon + 1);
    }
    return Address.parseMailbox(s, opts);
  }

  /** Parses a bare mailbox `local@domain` (`utf8` as for `parse`). */
  static parseMailbox(s: string, opts: { readonly utf8?: boolean } = {}): Address | undefined {
    const utf8 = opts.utf8 === true;
    let user: string;
    let rest: string;
    if (s[0] === '"') {
      const q = readQuoted(s, 0, utf8);
      if (!q || s[q.end] !== "@") return undefined;
      user = q.value;
      rest = s.slice(q.end + 1);
    } else {
      const at = s.lastIndexOf("@");
      if (at <= 0) return undefined;
      user = s.slice(0, at);
      rest = s.slice(at + 1);
      if (!(utf8 ? UTF8_DOT_STRING : DOT_STRING).test(user)) return undefined;
    }
    // RFC 6531 3.3: the limits count octets.
    if (longerThan(user, MAX_LOCAL_PART)) return undefined;
    if (!(isDomain(rest) || isAddressLiteral(rest) || (utf8 && isUtf8(rest) && asciiDomain(rest) !== ""))) return undefined;
    return new Address(user, rest);
  }

  isNull(): boolean {
    return this.user === "" && this.host === undefined;
  }

  /** The local part or domain holds UTF-8: it travels only with SMTPUTF8. */
  isUtf8(): boolean {
    return isUtf8(this.user) || isUtf8(this.host ?? "");
  }

  /** The domain as IDNA a-labels in lower case (for comparing with rcpthosts and the like). */
  asciiHost(): string | undefined {
    if (this.host === undefined || this.host[0] === "[") return this.host?.toLowerCase();
    return asciiDomain(this.host);
  }

  /** The local part, quoted when it is not a dot-string. */
  local(): string {
    if (DOT_STRING.test(this.user) || ATOM.test(this.user) || (isUtf8(this.user) && UTF8_DOT_STRING.test(this.user))) return this.user;
    return `"${this.user.replace(/(["\\])/g, "\\$1")}"`;
  }

  /** `user@host` without brackets (quoted local part when needed); empty for `<>`. */
  address(): string {
    if (this.isNull()) return "";
    return this.host === undefined ? this.local() : `${this.local()}@${this.host}`;
  }

  /** `<user@host>`; `<>` for the null sender. */
  format(): string {
    // Made once and kept while user and host stay the same (replies and logs ask often).
    if (this.#formatted === undefined || this.#formattedUser !== this.user || this.#formattedHost !== this.host) {
      this.#formattedUser = this.user;
      this.#formattedHost = this.host;
      this.#formatted = `<${this.address()}>`;
    }
    return this.#formatted;
  }

  toString(): string {
    return this.format();
  }

  /** Notes on this address (qpsmtpd's `$address->notes`). */
  notes<K extends string>(key: K, ...value: [NoteValue<AddressNotes, K> | undefined] | []): NoteValue<AddressNotes, K> | undefined {
    return accessNote(this.#notes ??= notesStore(), key, value) as NoteValue<AddressNotes, K> | undefined;
  }
}
