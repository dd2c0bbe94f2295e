/**
 * The shape of the code as a test: no import cycles, each layer imports only what it may, and a
 * built-in plugin imports only what a disk plugin can ("qpsmtpd", node: built-ins, declared
 * dependencies). The rules live in tools/imports.ts.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cycles, layerOf, pluginImportsOfSrc, readGraph, specifiers, violations } from "../tools/imports.ts";

const ROOT = resolve(import.meta.dir, "..");
const graph = readGraph(ROOT);
const deps = Object.keys(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).dependencies ?? {});

describe("the import graph", () => {
  test("reads imports, re-exports and dynamic imports, not examples in comments or strings", () => {
    const text = [
      '/** import { x } from "./doc.ts"; */',
      'import type { A } from "./a.ts";',
      "import {\n  B,\n  C,\n} from './b.ts';",
      'export * from "./c.ts";',
      'import * as d from "node:fs";',
      'const t = `import { e } from "./template.ts";`;',
      'await import("./lazy.ts");',
    ].join("\n");
    expect(specifiers(text)).toEqual(["./a.ts", "./b.ts", "./c.ts", "node:fs", "./lazy.ts"]);
  });

  test("sees every file of src/ and plugins/", () => {
    expect(graph.imports.size).toBeGreaterThan(100);
    expect(layerOf("src/api/mod.ts")).toBe("api");
    expect(layerOf("plugins/queue/maildir.ts")).toBe("plugins");
    expect(layerOf("src/main.ts")).toBe("top");
  });

  test("has no cycles", () => {
    expect(cycles(graph)).toEqual([]);
  });

  test("every import goes in an allowed direction", () => {
    expect(violations(graph, deps)).toEqual([]);
  });

  test("no built-in plugin imports from src/", () => {
    expect(pluginImportsOfSrc(graph)).toEqual([]);
  });

  test("a forbidden import would be caught", () => {
    const bad = {
      imports: new Map([
        ["src/smtp/x.ts", ["src/core/session.ts"]],
        ["src/core/y.ts", ["src/runtime/sockets.ts", "plugins/relay.ts"]],
        ["plugins/z.ts", ["src/api/ip.ts", "left-pad"]],
        ["src/api/w.ts", ["src/config/files.ts"]],
      ]),
    };
    expect(violations(bad, deps)).toHaveLength(6);
    const loop = { imports: new Map([["src/core/a.ts", ["src/core/b.ts"]], ["src/core/b.ts", ["src/core/a.ts"]]]) };
    expect(cycles(loop)).toEqual([["src/core/a.ts", "src/core/b.ts"]]);
  });

  test("only src/runtime/ names the runtime (Bun, Deno)", () => {
    const named = [...graph.imports.keys()].filter((f) => !f.startsWith("src/runtime/")).filter((f) => {
      const code = readFileSync(join(ROOT, f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      return /\b(?:Bun|Deno)\.\w/.test(code);
    });
    expect(named).toEqual([]);
  });
});
