/**
 * One test file per built-in plugin, mirroring plugins/: every key of BUILTINS (plugins/mod.ts)
 * has tests/plugins/<name>_test.ts, and every test file under tests/plugins/ is named for a
 * built-in. Shared helpers live in tests/helpers/.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join, sep } from "node:path";
import { BUILTINS } from "../plugins/mod.ts";

const DIR = join(import.meta.dir, "plugins");

/** Files bun test would run (`*_test.ts`, `*.test.ts`, `*_spec.ts`, ...), relative to `dir`, with `/`. */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => f.split(sep).join("/"))
    .filter((f) => /[._](test|spec)\.[cm]?[jt]sx?$/.test(f))
    .sort();
}

/** Built-ins without a test file, and test files that are not `<built-in>_test.ts`. */
function compare(names: readonly string[], files: readonly string[]): { missing: string[]; extra: string[] } {
  const want = new Set(names.map((n) => `${n}_test.ts`));
  const have = new Set(files);
  return { missing: [...want].filter((f) => !have.has(f)).sort(), extra: [...have].filter((f) => !want.has(f)).sort() };
}

describe("plugin tests", () => {
  const names = Object.keys(BUILTINS);
  const files = testFiles(DIR);

  test("every built-in plugin has tests/plugins/<name>_test.ts", () => {
    expect(names.length).toBeGreaterThan(0);
    expect(compare(names, files).missing).toEqual([]);
  });

  test("every test file under tests/plugins/ is named for a built-in plugin", () => {
    expect(files.length).toBeGreaterThan(0);
    expect(compare(names, files).extra).toEqual([]);
  });

  test("the check sees nested names, hyphens, strays and other test suffixes", () => {
    const r = compare(["queue/smtp-forward", "logging/file", "rcpt_ok"], [
      "queue/smtp-forward_test.ts",
      "queue/smtp_forward_test.ts",
      "logging_test.ts",
      "rcpt_ok.test.ts",
    ]);
    expect(r).toEqual({
      missing: ["logging/file_test.ts", "rcpt_ok_test.ts"],
      extra: ["logging_test.ts", "queue/smtp_forward_test.ts", "rcpt_ok.test.ts"],
    });
  });
});
