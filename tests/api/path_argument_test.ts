/** parsePathArgument: the MAIL and RCPT argument split as the core does it. */
import { describe, expect, test } from "bun:test";
import { parsePathArgument } from "../../src/api/path_argument.ts";

/** The split written with slices and lower-casing, as it was before it went by offsets: the reference. */
function reference(rest: string, keyword: "from" | "to") {
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
  return { path: s.slice(0, end), params: s.slice(end).split(" ").filter((w) => w !== "") };
}

describe("parsePathArgument", () => {
  test("the path, bracketed (quotes may hold > and escapes) or bare, then the parameter words", () => {
    expect(parsePathArgument("FROM:<a@b.example>", "from")).toEqual({ path: "<a@b.example>", params: [] });
    expect(parsePathArgument("from:  <a@b.example>  SIZE=10 BODY=8BITMIME ", "from")).toEqual({
      path: "<a@b.example>",
      params: ["SIZE=10", "BODY=8BITMIME"],
    });
    expect(parsePathArgument('To:<"x>y\\\\"@b.example> NOTIFY=NEVER', "to")).toEqual({
      path: '<"x>y\\\\"@b.example>',
      params: ["NOTIFY=NEVER"],
    });
    expect(parsePathArgument('TO:<"a\\"b>"@c.example>', "to")).toEqual({ path: '<"a\\"b>"@c.example>', params: [] });
    expect(parsePathArgument("TO:bare@b.example X=1", "to")).toEqual({ path: "bare@b.example", params: ["X=1"] });
    expect(parsePathArgument("TO:", "to")).toEqual({ path: "", params: [] });
  });

  test("no split for the wrong keyword, a missing colon, an unclosed bracket or text glued to the path", () => {
    for (const bad of ["TO:<a@b.example>", "FROM <a@b.example>", "FROM:<a@b.example", "FROM:<a@b.example>x", "FRO:<a>", "\uff26ROM:<a>"]) {
      expect(parsePathArgument(bad, "from")).toBeUndefined();
    }
    expect(parsePathArgument("TOO:<a>", "to")).toBeUndefined();
  });

  test("says what the reference says for 100,000 lines made of the characters that matter", () => {
    // A fixed seed: a failure shows the same line every run.
    let seed = 42;
    const next = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const heads = ["FROM:", "from:", "FrOm:", "TO:", "to:", "tO:", "FROM", "TO", "FRO:", "TOO:", "F0M:", ""];
    const alphabet = ["<", ">", '"', "\\", " ", " ", "a", "@", "=", "x", "\t"];
    for (let n = 0; n < 100_000; n++) {
      let line = heads[Math.floor(next() * heads.length)]!;
      const len = Math.floor(next() * 12);
      for (let i = 0; i < len; i++) line += alphabet[Math.floor(next() * alphabet.length)];
      for (const kw of ["from", "to"] as const) expect(parsePathArgument(line, kw)).toEqual(reference(line, kw));
    }
  });
});
