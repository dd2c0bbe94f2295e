/**
 * SMTP replies as data: a code and text lines, formatted for the wire.
 * @module
 */

/** Splits each message element on newlines, as qpsmtpd does, and drops CRs a plugin may have put in. */
export function splitLines(msgs: readonly string[]): string[] {
  const out: string[] = [];
  for (const m of msgs) for (const l of String(m).split("\n")) out.push(l.replace(/[\r\0]/g, ""));
  return out;
}

/** Formats a (possibly multi-line) reply: `CODE-text` for all but the last line, `CODE text` for it. */
export function formatReply(code: number, lines: readonly string[]): string {
  if (lines.length === 0) return `${code} \r\n`;
  let s = "";
  const last = lines.length - 1;
  for (let i = 0; i < last; i++) s += `${code}-${lines[i]}\r\n`;
  return s + `${code} ${lines[last]}\r\n`;
}
