/**
 * What a client declared with its MAIL and RCPT parameters (RFC 1870 SIZE, RFC 6152 and 3030
 * BODY, RFC 6531 SMTPUTF8, RFC 8689 REQUIRETLS, RFC 3461 DSN), as the core parsed and checked
 * them: `txn.mail_options()` and each recipient's `dsn`.
 *
 * ```ts
 * const { smtputf8, ret, envid } = txn.mail_options();
 * for (const r of txn.recipients()) if (r.dsn?.notify?.includes("NEVER")) this.log(LOGINFO, `${r}: no DSN wanted`);
 * ```
 * @module
 */

export type BodyType = "7BIT" | "8BITMIME" | "BINARYMIME";

export type DsnNotify = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

export interface MailOptions {
  /** SIZE: the size the client announced, bytes. */
  readonly size?: number;
  /** BODY: the body type (BINARYMIME only with BDAT). */
  readonly body?: BodyType;
  /** SMTPUTF8: addresses and headers may hold UTF-8. */
  readonly smtputf8: boolean;
  /** REQUIRETLS: the message may only travel over verified TLS. */
  readonly requiretls: boolean;
  /** DSN RET: return the full message or only its headers in a failure report. */
  readonly ret?: "FULL" | "HDRS";
  /** DSN ENVID: the sender's id for this message (xtext decoded). */
  readonly envid?: string;
}

/** A recipient's DSN parameters (RFC 3461). */
export interface RcptDsn {
  /** NOTIFY: when to report; `["NEVER"]` alone, or any of SUCCESS, FAILURE, DELAY. */
  readonly notify?: readonly DsnNotify[];
  /** ORCPT: the original recipient, as `type;address` (xtext decoded). */
  readonly orcpt?: { readonly type: string; readonly address: string };
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes RFC 3461 xtext (`+HH` escapes) as UTF-8; undefined when it is not valid xtext or UTF-8. */
export function xtextDecode(s: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) bytes.push(c);
    else return undefined;
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/** Encodes text as RFC 3461 xtext. */
export function xtextEncode(s: string): string {
  let out = "";
  for (const ch of Buffer.from(s, "utf8")) {
    out += ch >= 33 && ch <= 126 && ch !== 0x2b && ch !== 0x3d
      ? String.fromCharCode(ch)
      : `+${ch.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
