/**
 * qpsmtpd's password check for auth plugins.
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { DECLINED, DENY, OK, type ReturnCode } from "./codes.ts";

/**
 * qpsmtpd's validate_password for auth plugins: compares the attempt with the stored clear-text
 * password, or the CRAM-MD5 response with HMAC-MD5(ticket, stored password).
 */
export function validate_password(opts: {
  srcClear?: string | undefined;
  attemptClear?: string | undefined;
  attemptHash?: string | undefined;
  ticket?: string | undefined;
  deny?: ReturnCode;
}): ReturnCode {
  const deny = opts.deny ?? DENY;
  if (opts.srcClear === undefined) return DECLINED;
  if (opts.attemptClear !== undefined) return safeEqual(opts.attemptClear, opts.srcClear) ? OK : deny;
  if (opts.attemptHash !== undefined && opts.ticket !== undefined) {
    const want = createHmac("md5", opts.srcClear).update(opts.ticket).digest("hex");
    return safeEqual(opts.attemptHash.toLowerCase(), want) ? OK : deny;
  }
  return DECLINED;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
