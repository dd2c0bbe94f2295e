/**
 * RFC 5321 paths and mailboxes with qpsmtpd's Address semantics, parsed strictly.
 *
 * Unlike Perl qpsmtpd, an unquoted local part must be a dot-string, domain labels must be real
 * labels, IPv4 literals are range-checked and the RFC's length limits apply. Source routes are
 * accepted and dropped, so only the final mailbox counts.
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";
import { accessNote, type AddressNotes, notesStore, type NoteValue } from "./notes.ts";

const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const GENERAL_LITERAL = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/;

export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;
export const MAX_PATH = 256;

export function isDomain(s: string): boolean {
  if (s.length === 0 || s.length > MAX_DOMAIN) return false;
  for (const label of s.split(".")) if (label.length > 63 || !LABEL.test(label)) return false;
  return true;
}

/** `[1.2.3.4]`, `[IPv6:…]` or a general `[tag:content]` literal. */
export function isAddressLiteral(s: string): boolean {
  if (s.length < 3 || s[0] !== "[" || s[s.length - 1] !== "]") return false;
  const inner = s.slice(1, -1);
  if (/^IPv6:/i.test(inner)) return isIPv6(inner.slice(5));
  if (/^[0-9.]+$/.test(inner)) return isIPv4(inner);
  return GENERAL_LITERAL.test(inner) && !/^IPv6:/i.test(inner);
}

/** Parses a quoted-string starting at `s[i]` (a `"`); returns its value and the index after it. */
function readQuoted(s: string, i: number): { value: string; end: number } | undefined {
  let value = "";
  for (let j = i + 1; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x22) return { value, end: j + 1 };
    if (ch === 0x5c) {
      const next = s.charCodeAt(j + 1);
      if (!(next >= 32 && next <= 126)) return undefined;
      value += s[++j];
    } else if (ch >= 32 && ch <= 126) value += s[j];
    else return undefined;
  }
  return undefined;
}

export class Address {
  /** The local part, unquoted. Empty for the null sender. */
  user: string;
  /** The domain or address literal; undefined for `<>` and `<postmaster>`. */
  host: string | undefined;
  readonly #notes = notesStore();

  constructor(user: string, host?: string) {
    this.user = user;
    this.host = host;
  }

  /** Parses `<path>`; undefined when it is not a valid RFC 5321 path. */
  static parse(path: string): Address | undefined {
    if (path.length > MAX_PATH || path[0] !== "<" || path[path.length - 1] !== ">") return undefined;
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
    return Address.parseMailbox(s);
  }

  /** Parses a bare mailbox `local@domain`. */
  static parseMailbox(s: string): Address | undefined {
    let user: string;
    let rest: string;
    if (s[0] === '"') {
      const q = readQuoted(s, 0);
      if (!q || s[q.end] !== "@") return undefined;
      user = q.value;
      rest = s.slice(q.end + 1);
    } else {
      const at = s.lastIndexOf("@");
      if (at <= 0) return undefined;
      user = s.slice(0, at);
      rest = s.slice(at + 1);
      if (!DOT_STRING.test(user)) return undefined;
    }
    if (user.length > MAX_LOCAL_PART) return undefined;
    if (!(isDomain(rest) || isAddressLiteral(rest))) return undefined;
    return new Address(user, rest);
  }

  isNull(): boolean {
    return this.user === "" && this.host === undefined;
  }

  /** The local part, quoted when it is not a dot-string. */
  local(): string {
    if (DOT_STRING.test(this.user) || ATOM.test(this.user)) return this.user;
    return `"${this.user.replace(/(["\\])/g, "\\$1")}"`;
  }

  /** `user@host` without brackets (quoted local part when needed); empty for `<>`. */
  address(): string {
    if (this.isNull()) return "";
    return this.host === undefined ? this.local() : `${this.local()}@${this.host}`;
  }

  /** `<user@host>`; `<>` for the null sender. */
  format(): string {
    return `<${this.address()}>`;
  }

  toString(): string {
    return this.format();
  }

  /** Notes on this address (qpsmtpd's `$address->notes`). */
  notes<K extends string>(key: K, ...value: [NoteValue<AddressNotes, K> | undefined] | []): NoteValue<AddressNotes, K> | undefined {
    return accessNote(this.#notes, key, value) as NoteValue<AddressNotes, K> | undefined;
  }
}
