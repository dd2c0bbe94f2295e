/**
 * The MAIL and RCPT argument as the core splits it: for `*_parse` hooks that parse the line
 * themselves and want the standard split.
 * @module
 */

export interface PathArgument {
  /** The path as written, normally `<…>`. */
  readonly path: string;
  /** The parameter words after the path. */
  readonly params: readonly string[];
}

/**
 * Splits `FROM:<path> params` (or `TO:`): the keyword, optional spaces, then a bracketed path
 * (quotes may hold `>`) or a bare word, then space-separated parameters.
 */
export function parsePathArgument(rest: string, keyword: "from" | "to"): PathArgument | undefined {
  // By offsets into `rest`: this runs for every MAIL and RCPT, and each string made costs.
  const kw = keyword.length;
  if (rest.length <= kw || rest.charCodeAt(kw) !== 0x3a) return undefined;
  for (let i = 0; i < kw; i++) {
    const c = rest.charCodeAt(i);
    if ((c < 65 || c > 90) && (c < 97 || c > 122)) return undefined;
    if ((c | 0x20) !== keyword.charCodeAt(i)) return undefined;
  }
  let from = kw + 1;
  while (rest.charCodeAt(from) === 0x20) from++;
  const n = rest.length;
  let end: number;
  if (rest.charCodeAt(from) === 0x3c) {
    let inQuote = false;
    end = -1;
    for (let i = from + 1; i < n; i++) {
      const c = rest.charCodeAt(i);
      if (inQuote && c === 0x5c) i++;
      else if (c === 0x22) inQuote = !inQuote;
      else if (c === 0x3e && !inQuote) {
        end = i + 1;
        break;
      }
    }
    if (end < 0) return undefined;
  } else {
    end = rest.indexOf(" ", from);
    if (end < 0) end = n;
  }
  if (end === n) return { path: rest.slice(from), params: [] };
  if (rest.charCodeAt(end) !== 0x20) return undefined;
  const params = rest.slice(end).split(" ").filter((w) => w !== "");
  return { path: rest.slice(from, end), params };
}
