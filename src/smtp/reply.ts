/**
 * SMTP replies as data: a code and text lines, formatted for the wire.
 * @module
 */

/**
 * Splits each message element (from index `from` on) on newlines, as qpsmtpd does, and drops
 * CRs and NULs a plugin may have put in.
 */
export function splitLines(msgs: readonly unknown[], from = 0): string[] {
  const out: string[] = [];
  for (let i = from; i < msgs.length; i++) {
    const m = String(msgs[i]);
    // Most are one clean line: kept as they are, without a split and a replace each.
    if (isOneLine(m)) out.push(m);
    else for (const l of m.split("\n")) out.push(l.replace(/[\r\0]/g, ""));
  }
  return out;
}

function isOneLine(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0) return false;
  }
  return true;
}

/** Formats a (possibly multi-line) reply: `CODE-text` for all but the last line, `CODE text` for it. */
export function formatReply(code: number, lines: readonly string[]): string {
  if (lines.length === 0) return `${code} \r\n`;
  let s = "";
  const last = lines.length - 1;
  for (let i = 0; i < last; i++) s += `${code}-${lines[i]}\r\n`;
  return s + `${code} ${lines[last]}\r\n`;
}
