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
  const kw = keyword.length + 1;
  if (rest.length < kw || rest[kw - 1] !== ":" || rest.slice(0, kw - 1).toLowerCase() !== keyword) return undefined;
  let from = kw;
  while (rest[from] === " ") from++;
  const s = rest.slice(from);
  let end: number;
  if (s[0] === "<") {
    let inQuote = false;
    end = -1;
    for (let i = 1; i < s.length; i++) {
      const c = s[i];
      if (inQuote && c === "\\") i++;
      else if (c === '"') inQuote = !inQuote;
      else if (c === ">" && !inQuote) {
        end = i + 1;
        break;
      }
    }
    if (end < 0) return undefined;
  } else {
    end = s.indexOf(" ");
    if (end < 0) end = s.length;
  }
  if (end === s.length) return { path: s, params: [] };
  if (s[end] !== " ") return undefined;
  const params = s.slice(end).split(" ").filter((w) => w !== "");
  return { path: s.slice(0, end), params };
}
