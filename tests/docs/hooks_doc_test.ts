/**
 * Keeps docs/hooks.md true: every hook of HOOK_NAMES (src/api/hook_names.ts) is in one of its
 * `| Hook | Arguments |` tables, every hook it names exists, and its argument names are the
 * names of the hook's tuple in HookArgs (src/api/hooks.ts), in order. The source is read with
 * the TypeScript compiler API, so the test follows the types, not a copy of them.
 *
 * The format it reads (docs/hooks.md, "How this file is checked"):
 * - a table whose header starts `| Hook | Arguments |`;
 * - Hook column: hook names in backticks (other words are not read);
 * - Arguments column: `—` for none, or the names in backticks, comma-separated, a rest
 *   argument as `...name`; text after that is a comment;
 * - any `hook_<name>` in backticks must be a hook's method name.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "../..");
const read = (rel: string): string => readFileSync(join(ROOT, rel), "utf8");

// ---- the source ---------------------------------------------------------------------------

function unwrap(e: ts.Expression): ts.Expression {
  while (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e) || ts.isTypeAssertionExpression(e)) {
    e = e.expression;
  }
  return e;
}

/** The string literals of `HOOK_NAMES = [...]` in hook_names.ts's text. */
export function hookNamesFrom(text: string): string[] {
  const sf = ts.createSourceFile("hook_names.ts", text, ts.ScriptTarget.Latest, true);
  for (const st of sf.statements) {
    if (!ts.isVariableStatement(st)) continue;
    for (const d of st.declarationList.declarations) {
      if (!ts.isIdentifier(d.name) || d.name.text !== "HOOK_NAMES" || !d.initializer) continue;
      const list = unwrap(d.initializer);
      if (!ts.isArrayLiteralExpression(list)) throw new Error("HOOK_NAMES is not an array literal");
      return list.elements.map((el) => {
        if (!ts.isStringLiteral(el)) throw new Error(`HOOK_NAMES has a non-string element: ${el.getText(sf)}`);
        return el.text;
      });
    }
  }
  throw new Error("no HOOK_NAMES in hook_names.ts");
}

function propertyName(name: ts.PropertyName, sf: ts.SourceFile): string {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  throw new Error(`HookArgs has a computed property name: ${name.getText(sf)}`);
}

/** The element names of a tuple type, following type aliases of the same file (`AuthArgs`). */
function tupleNames(
  t: ts.TypeNode,
  aliases: ReadonlyMap<string, ts.TypeNode>,
  hook: string,
  seen: ReadonlySet<string> = new Set(),
): string[] {
  if (ts.isParenthesizedTypeNode(t)) return tupleNames(t.type, aliases, hook, seen);
  if (ts.isTypeOperatorNode(t) && t.operator === ts.SyntaxKind.ReadonlyKeyword) return tupleNames(t.type, aliases, hook, seen);
  if (ts.isTypeReferenceNode(t) && ts.isIdentifier(t.typeName)) {
    const name = t.typeName.text;
    const target = aliases.get(name);
    if (!target || seen.has(name)) throw new Error(`HookArgs["${hook}"] is ${name}, not a tuple type alias of hooks.ts`);
    return tupleNames(target, aliases, hook, new Set([...seen, name]));
  }
  if (!ts.isTupleTypeNode(t)) throw new Error(`HookArgs["${hook}"] is not a tuple`);
  return t.elements.map((el) => {
    if (!ts.isNamedTupleMember(el)) throw new Error(`HookArgs["${hook}"] has an unnamed element; name it so the doc can be checked`);
    return `${el.dotDotDotToken ? "..." : ""}${el.name.text}`;
  });
}

/** Each hook of `interface HookArgs` in hooks.ts's text, with its argument names in order. */
export function hookArgsFrom(text: string): Map<string, string[]> {
  const sf = ts.createSourceFile("hooks.ts", text, ts.ScriptTarget.Latest, true);
  const aliases = new Map<string, ts.TypeNode>();
  let args: ts.InterfaceDeclaration | undefined;
  for (const st of sf.statements) {
    if (ts.isTypeAliasDeclaration(st)) aliases.set(st.name.text, st.type);
    if (ts.isInterfaceDeclaration(st) && st.name.text === "HookArgs") args = st;
  }
  if (!args) throw new Error("no interface HookArgs in hooks.ts");
  const out = new Map<string, string[]>();
  for (const m of args.members) {
    if (!ts.isPropertySignature(m) || !m.type) throw new Error(`HookArgs has a member that is not a typed property: ${m.getText(sf)}`);
    const hook = propertyName(m.name, sf);
    out.set(hook, tupleNames(m.type, aliases, hook));
  }
  return out;
}

// ---- the document -------------------------------------------------------------------------

/** One row of a `| Hook | Arguments |` table. */
export interface DocRow {
  /** 1-based line number in the document. */
  readonly line: number;
  readonly hooks: string[];
  /** The argument names; undefined when the cell does not follow the notation. */
  readonly args: string[] | undefined;
}

/** Splits a table line into trimmed cells; a `|` inside backticks does not split. */
export function cells(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let code = false;
  const body = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === "\\" && body[i + 1] === "|") {
      cur += "|";
      i++;
    } else if (c === "`") {
      code = !code;
      cur += c;
    } else if (c === "|" && !code) {
      out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

const isTableLine = (l: string): boolean => l.trimStart().startsWith("|");

/** Reads the Arguments notation: `—`, or backticked `a, b, ...rest` at the start of the cell. */
export function parseArgs(cell: string): string[] | undefined {
  if (cell.startsWith("—")) return [];
  const m = /^`([^`]*)`/.exec(cell);
  if (!m) return undefined;
  const names = m[1]!.split(",").map((s) => s.trim());
  return names.every((n) => /^(\.\.\.)?[A-Za-z_$][\w$]*$/.test(n)) ? names : undefined;
}

/** Every row of every table whose first two header cells are `Hook` and `Arguments` (code fences skipped). */
export function docRows(md: string): DocRow[] {
  const lines = md.split("\n");
  const rows: DocRow[] = [];
  let fence = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s*(```|~~~)/.test(l)) fence = !fence;
    if (fence || !isTableLine(l)) continue;
    const head = cells(l);
    if (head[0] !== "Hook" || head[1] !== "Arguments") {
      while (i + 1 < lines.length && isTableLine(lines[i + 1]!)) i++; // some other table
      continue;
    }
    i++; // the |---| line
    while (i + 1 < lines.length && isTableLine(lines[i + 1]!)) {
      i++;
      const row = cells(lines[i]!);
      rows.push({
        line: i + 1,
        hooks: [...(row[0] ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
        args: parseArgs(row[1] ?? ""),
      });
    }
  }
  return rows;
}

const methodName = (hook: string): string => `hook_${hook.replace(/\W/g, "_")}`;

/** What is wrong with `md` against the hooks and their arguments; [] when nothing is. */
export function docProblems(md: string, names: readonly string[], args: ReadonlyMap<string, readonly string[]>): string[] {
  const problems: string[] = [];
  const known = new Set(names);
  const where = new Map<string, number>();
  const rows = docRows(md);
  if (rows.length === 0) problems.push("no | Hook | Arguments | table");
  for (const row of rows) {
    if (row.hooks.length === 0) problems.push(`line ${row.line}: no hook name in backticks in the Hook column`);
    if (row.args === undefined) problems.push(`line ${row.line}: the Arguments column starts neither with — nor with backticked names`);
    for (const hook of row.hooks) {
      if (!known.has(hook)) {
        problems.push(`line ${row.line}: "${hook}" is not a hook`);
        continue;
      }
      const first = where.get(hook);
      if (first !== undefined) problems.push(`line ${row.line}: ${hook} is documented twice (first on line ${first})`);
      else where.set(hook, row.line);
      const want = args.get(hook);
      if (want === undefined) problems.push(`${hook} has no entry in HookArgs`);
      else if (row.args !== undefined && row.args.join(", ") !== want.join(", ")) {
        problems.push(
          `line ${row.line}: ${hook}'s arguments are documented as \`${row.args.join(", ") || "—"}\`; HookArgs has \`${
            want.join(", ") || "—"
          }\``,
        );
      }
    }
  }
  for (const hook of names) if (!where.has(hook)) problems.push(`${hook} is not documented`);
  const methods = new Set(names.map(methodName));
  for (const m of md.matchAll(/`(hook_[A-Za-z0-9_]+)`/g)) {
    if (!methods.has(m[1]!)) problems.push(`${m[1]} is not a hook's method name`);
  }
  return problems;
}

// ---- the tests ----------------------------------------------------------------------------

const NAMES = hookNamesFrom(read("src/api/hook_names.ts"));
const ARGS = hookArgsFrom(read("src/api/hooks.ts"));
const DOC = read("docs/hooks.md");

describe("docs/hooks.md", () => {
  test("the source is read: HOOK_NAMES and HookArgs list the same hooks", () => {
    expect(NAMES.length).toBeGreaterThan(30);
    expect([...ARGS.keys()].sort()).toEqual([...NAMES].sort());
    expect(ARGS.get("logging")).toEqual(["level", "hook", "plugin", "message", "connection_id"]);
    expect(ARGS.get("auth")).toEqual(["mechanism", "user", "passClear", "passHash", "ticket"]);
    expect(ARGS.get("helo")).toEqual(["host", "...extra"]);
    expect(ARGS.get("connect")).toEqual([]);
  });

  test("documents every hook, names only hooks, and gives each hook's arguments as HookArgs names them", () => {
    expect(docProblems(DOC, NAMES, ARGS)).toEqual([]);
  });
});

describe("the checker", () => {
  const names = ["logging", "connect", "helo", "ehlo", "auth", "auth-plain"];
  const args = hookArgsFrom(`
    type AuthArgs = [mechanism: string, user: string];
    export interface HookArgs {
      logging: [level: number, message: string, connection_id: string];
      connect: [];
      helo: [host: string, ...extra: string[]];
      ehlo: readonly [host: string, ...extra: string[]];
      auth: AuthArgs;
      "auth-plain": AuthArgs;
    }`);

  test("reads names, rest elements, readonly tuples and aliases from source text", () => {
    expect(hookNamesFrom(`export const HOOK_NAMES = ["a", "b-c"] as const;`)).toEqual(["a", "b-c"]);
    expect([...args]).toEqual([
      ["logging", ["level", "message", "connection_id"]],
      ["connect", []],
      ["helo", ["host", "...extra"]],
      ["ehlo", ["host", "...extra"]],
      ["auth", ["mechanism", "user"]],
      ["auth-plain", ["mechanism", "user"]],
    ]);
    expect(() => hookArgsFrom("interface HookArgs { x: [string]; }")).toThrow("unnamed element");
  });

  test("splits table cells, not on a | inside backticks", () => {
    expect(cells("| `a|b` | c \\| d |x|")).toEqual(["`a|b`", "c | d", "x"]);
    expect(parseArgs("— (the header)")).toEqual([]);
    expect(parseArgs("`a, ...rest` (comment)")).toEqual(["a", "...rest"]);
    expect(parseArgs("`address string, params`")).toBeUndefined();
    expect(parseArgs("a, b")).toBeUndefined();
  });

  test("accepts a correct document", () => {
    const good = [
      "| Hook | Arguments | OK |",
      "|---|---|---|",
      "| `connect` | — | greeting |",
      "| `helo`, `ehlo` | `host, ...extra` | 250 |",
      "| `auth-plain`, then `auth` | `mechanism, user` | 235 |",
      "",
      "Other text, `hook_auth_plain`.",
      "",
      "| Hook | Arguments | When |",
      "|---|---|---|",
      "| `logging` | `level, message, connection_id` | always |",
    ].join("\n");
    expect(docProblems(good, names, args)).toEqual([]);
  });

  test("fails on a missing hook, an unknown hook, wrong or unreadable arguments, a duplicate, a bad method name", () => {
    const bad = [
      "| Hook | Arguments | OK |",
      "|---|---|---|",
      "| `connect` | `info` | greeting |",
      "| `helo`, `ehlo` | `...extra, host` | 250 |",
      "| `auth-plain`, then `auth` | mechanism, user | 235 |",
      "| `recipient` | — | 250 |",
      "| `helo` | `host, ...extra` | 250 |",
      "",
      "Mentions `hook_bogus` and `hook_helo`.",
      "",
      "```",
      "| Hook | Arguments |",
      "|---|---|",
      "| `logging` | `level, message, connection_id` |",
      "```",
    ].join("\n");
    expect(docProblems(bad, names, args)).toEqual([
      "line 3: connect's arguments are documented as `info`; HookArgs has `—`",
      "line 4: helo's arguments are documented as `...extra, host`; HookArgs has `host, ...extra`",
      "line 4: ehlo's arguments are documented as `...extra, host`; HookArgs has `host, ...extra`",
      "line 5: the Arguments column starts neither with — nor with backticked names",
      'line 6: "recipient" is not a hook',
      "line 7: helo is documented twice (first on line 4)",
      "logging is not documented",
      "hook_bogus is not a hook's method name",
    ]);
  });

  test("catches a one-word change to the real document", () => {
    const changed = DOC.replace("`level, hook, plugin, message, connection_id`", "`level, hook, plugin, message`");
    expect(changed).not.toBe(DOC);
    expect(docProblems(changed, NAMES, ARGS)).toEqual([
      expect.stringContaining(
        "logging's arguments are documented as `level, hook, plugin, message`; HookArgs has `level, hook, plugin, message, connection_id`",
      ),
    ]);
    const dropped = DOC.replace("| `post-fork` |", "| post-fork |");
    expect(docProblems(dropped, NAMES, ARGS)).toContain("post-fork is not documented");
  });
});
