/**
 * Keeps docs/plugins.md true: every ```ts block is a module that type-checks against the
 * source (with the repository's tsconfig, "qpsmtpd" mapped to src/api), the blocks that are
 * tests pass under `qpsmtpd test`, and every export of "qpsmtpd" and "qpsmtpd/testing", and
 * every library a plugin may import, is named in the document.
 *
 * A block's info string may name its file (```ts queue/lmtp.ts); other blocks import it by
 * that name. Unnamed blocks get a name of their own.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import ts from "typescript";
import { PLUGIN_DEPENDENCIES } from "../../src/plugin/dependencies.ts";

const ROOT = resolve(import.meta.dir, "../..");
const DOC = readFileSync(join(ROOT, "docs/plugins.md"), "utf8");
/** Where the blocks seem to live for the compiler (nothing is written there). */
const VIRTUAL_DIR = join(ROOT, "tests/docs/__plugins_md__");

export interface Example {
  readonly name: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly code: string;
}

/** The ```ts blocks of a Markdown text. */
export function examples(md: string): Example[] {
  const lines = md.split("\n");
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(?:\s+(\S+))?\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && !/^```\s*$/.test(lines[i]!)) body.push(lines[i]!);
    if (open[1] === "ts") out.push({ name: open[2] ?? `example_line_${start + 1}.ts`, line: start + 1, code: body.join("\n") + "\n" });
  }
  return out;
}

interface Checked {
  /** Diagnostics by virtual file name (relative), and "" for the ones of no file. */
  readonly errors: Map<string, string[]>;
  /** The export names of "qpsmtpd" and "qpsmtpd/testing". */
  readonly exports: string[];
}

/** Type-checks `files` (relative name → text) in one program with the repository's options. */
function check(files: ReadonlyMap<string, string>): Checked {
  const config = ts.readConfigFile(join(ROOT, "tsconfig.json"), ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options, noEmit: true };
  const virtual = new Map([...files].map(([name, text]) => [join(VIRTUAL_DIR, name), text]));
  const host = ts.createCompilerHost(options, true);
  const realGet = host.getSourceFile.bind(host);
  const inVirtual = (d: string): boolean => d === VIRTUAL_DIR || d.startsWith(`${VIRTUAL_DIR}/`);
  host.fileExists = (f) => virtual.has(f) || ts.sys.fileExists(f);
  host.directoryExists = (d) => inVirtual(d) || ts.sys.directoryExists(d);
  host.readFile = (f) => virtual.get(f) ?? ts.sys.readFile(f);
  host.getSourceFile = (f, target, onError, create) => {
    const text = virtual.get(f);
    return text === undefined ? realGet(f, target, onError, create) : ts.createSourceFile(f, text, target, true);
  };
  const mods = ["src/api/mod.ts", "src/testing/mod.ts"].map((m) => join(ROOT, m));
  const program = ts.createProgram([...virtual.keys(), ...mods], options, host);
  const errors = new Map<string, string[]>();
  // Only the examples are checked (the source's own errors are `tsc -p .`'s business).
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...[...virtual.keys()].flatMap((f) => {
      const sf = program.getSourceFile(f)!;
      return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    }),
  ];
  for (const d of diagnostics) {
    const name = d.file ? d.file.fileName.slice(VIRTUAL_DIR.length + 1) : "";
    const at = d.file && d.start !== undefined ? `${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : "";
    errors.set(name, [...(errors.get(name) ?? []), at + ts.flattenDiagnosticMessageText(d.messageText, "\n")]);
  }
  const checker = program.getTypeChecker();
  const exports = mods.flatMap((m) => {
    const sf = program.getSourceFile(m);
    const sym = sf && checker.getSymbolAtLocation(sf);
    if (!sym) throw new Error(`cannot read the exports of ${m}`);
    return checker.getExportsOfModule(sym).map((s) => s.name);
  });
  return { errors, exports };
}

/** Every identifier inside backticks in a Markdown text. */
export function codeWords(md: string): Set<string> {
  const words = new Set<string>();
  for (const m of md.matchAll(/`([^`\n]+)`/g)) for (const w of m[1]!.matchAll(/[A-Za-z_$][\w$]*/g)) words.add(w[0]);
  return words;
}

const EXAMPLES = examples(DOC);
const WRONG = "wrong_on_purpose.ts";
const checked = check(
  new Map([
    ...EXAMPLES.map((e) => [e.name, e.code] as const),
    // Proves the check can fail: a recipient is an Address, and 250 is not a return code.
    [
      WRONG,
      'import type { Hooks } from "qpsmtpd";\nexport const hook_rcpt: Hooks["rcpt"] = (_txn, rcpt: string) => (rcpt ? [250, "ok"] : undefined);\n',
    ],
  ]),
);

describe("docs/plugins.md", () => {
  test("has examples, each with its own file name", () => {
    expect(EXAMPLES.length).toBeGreaterThan(15);
    const names = EXAMPLES.map((e) => e.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  test("every example type-checks against src/api and src/testing", () => {
    const wrong = checked.errors.get(WRONG) ?? [];
    expect(wrong.length).toBeGreaterThan(0);
    const errors = [...checked.errors].filter(([name]) => name !== WRONG).map(([name, list]) => {
      const line = EXAMPLES.find((e) => e.name === name)?.line;
      return `${name}${line ? ` (the block on line ${line})` : ""}:\n  ${list.join("\n  ")}`;
    });
    expect(errors).toEqual([]);
  });

  test('names every export of "qpsmtpd" and "qpsmtpd/testing"', () => {
    expect(checked.exports).toContain("SmtpClient");
    expect(checked.exports).toContain("TestSession");
    const words = codeWords(DOC);
    expect(checked.exports.filter((name) => !words.has(name))).toEqual([]);
    expect([...codeWords('`Hooks<D>["rcpt"]`, `a.b()`')]).toEqual(["Hooks", "D", "rcpt", "a", "b"]);
  });

  test("names every library a plugin may import (src/plugin/dependencies.ts)", () => {
    const words = codeWords(DOC);
    const names = Object.keys(PLUGIN_DEPENDENCIES);
    expect(names).toContain("mailauth");
    expect(names.filter((name) => !DOC.includes(`\`${name}\``) && !words.has(name))).toEqual([]);
  });

  test("the example tests pass under qpsmtpd test", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plugins-md-"));
    try {
      for (const e of EXAMPLES) {
        mkdirSync(dirname(join(dir, e.name)), { recursive: true });
        writeFileSync(join(dir, e.name), e.code);
      }
      const specs = EXAMPLES.filter((e) => e.name.endsWith("_test.ts")).map((e) => e.name);
      expect(specs.length).toBeGreaterThan(0);
      const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "test", ...specs], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ code, out, err: err.trim() === "" ? "" : err }).toEqual({
        code: 0,
        out: expect.stringMatching(/\d+ passed, 0 failed/),
        err: "",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
