/**
 * The import graph of `src/` and `plugins/`: who imports what, the cycles, and the layering
 * rules. `tests/layering_test.ts` checks it; `bun tools/imports.ts [ROOT]` prints a report (the
 * numbers in a change note come from here).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

export interface Graph {
  /** Every file (relative to the root) to the files and packages it imports. */
  readonly imports: Map<string, string[]>;
}

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (n.endsWith(".ts") && !n.endsWith(".d.ts")) out.push(p);
  }
}

/** The specifiers a file imports or re-exports (comments and template strings stripped, so examples do not count). */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "").replace(/`(?:\\[\s\S]|[^`\\])*`/g, "``");
  const out: string[] = [];
  const clause = String.raw`(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\}|\w+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+\w+))?)`;
  const statement = new RegExp(String.raw`^\s*(?:import|export)\s+${clause}\s+from\s*["']([^"']+)["']`, "gm");
  for (const m of code.matchAll(statement)) out.push(m[1]!);
  for (const m of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) out.push(m[1]!);
  for (const m of code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]!);
  return out;
}

/** Reads every `.ts` file under `src/` and `plugins/` of `root`; relative imports become root-relative paths. */
export function readGraph(root: string): Graph {
  const files: string[] = [];
  for (const d of ["src", "plugins"]) walk(join(root, d), files);
  const imports = new Map<string, string[]>();
  for (const f of files) {
    const rel = relative(root, f);
    const deps = specifiers(readFileSync(f, "utf8")).map((s) => (s.startsWith(".") ? normalize(join(dirname(rel), s)) : s));
    imports.set(rel, deps);
  }
  return { imports };
}

/** Cycles among the files, each as the list of files in it (strongly connected components of more than one file). */
export function cycles(g: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let i = 0;
  const visit = (v: string): void => {
    index.set(v, i);
    low.set(v, i++);
    stack.push(v);
    on.add(v);
    for (const w of g.imports.get(v) ?? []) {
      const t = w === "qpsmtpd" ? "src/api/mod.ts" : w;
      if (!g.imports.has(t)) continue;
      if (!index.has(t)) {
        visit(t);
        low.set(v, Math.min(low.get(v)!, low.get(t)!));
      } else if (on.has(t)) low.set(v, Math.min(low.get(v)!, index.get(t)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...g.imports.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** The layer a file belongs to. */
export function layerOf(file: string): string {
  if (file.startsWith("plugins/")) return file === "plugins/mod.ts" ? "builtins" : "plugins";
  const m = /^src\/([^/]+)\//.exec(file);
  return m ? m[1]! : "top"; // src/main.ts, src/app.ts
}

/** What each layer may import, besides itself, `node:` built-ins and `qpsmtpd`'s own layer rules. */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  /** The public contract: a leaf. */
  api: [],
  /** The pure protocol layer: bytes in, lines and commands out. */
  smtp: ["api"],
  config: [],
  dns: ["api", "config"],
  store: ["api"],
  /** Counters and their text format; the control socket. */
  metrics: ["api"],
  control: [],
  /** The engine: protocol, contract and config, never sockets, runtimes, loaders or plugins. */
  core: ["api", "smtp", "config", "metrics"],
  /** The plugin loader. */
  plugin: ["api", "core", "config"],
  /** The only place that knows sockets, TLS and the runtime. */
  runtime: ["api"],
  server: ["api", "smtp", "config", "core", "runtime", "metrics", "control"],
  testing: ["api", "smtp", "config", "dns", "store", "core", "plugin", "runtime", "builtins"],
  cli: ["api", "testing", "control"],
  builtins: ["plugins", "api"],
  plugins: ["api"],
  top: ["api", "smtp", "config", "dns", "store", "core", "plugin", "runtime", "server", "testing", "cli", "builtins", "metrics", "control"],
};

/** Packages a layer may import (besides `node:` built-ins). */
export function allowedPackages(layer: string, dependencies: readonly string[]): readonly string[] {
  if (layer === "plugins") return [...dependencies, "qpsmtpd"];
  if (layer === "builtins") return ["qpsmtpd"];
  return dependencies;
}

/** Every import that breaks the layering, as `file -> target: why`. */
export function violations(g: Graph, dependencies: readonly string[]): string[] {
  const out: string[] = [];
  for (const [file, deps] of g.imports) {
    const layer = layerOf(file);
    for (const d of deps) {
      if (d.startsWith("node:")) continue;
      if (!d.includes("/") || !d.endsWith(".ts")) {
        // a package
        if (!allowedPackages(layer, dependencies).includes(d)) out.push(`${file} -> ${d}: ${layer} may not import the package ${d}`);
        continue;
      }
      if (layer === "plugins") {
        out.push(`${file} -> ${d}: a built-in imports only "qpsmtpd", node: built-ins and declared dependencies`);
        continue;
      }
      const target = layerOf(d);
      if (target !== layer && !ALLOWED[layer]!.includes(target)) out.push(`${file} -> ${d}: ${layer} may not import ${target}`);
    }
  }
  return out.sort();
}

/** Plugin files that import from `src/`. */
export function pluginImportsOfSrc(g: Graph): string[] {
  return [...g.imports].filter(([f, deps]) => f.startsWith("plugins/") && f !== "plugins/mod.ts" && deps.some((d) => d.startsWith("src/")))
    .map(([f]) => f).sort();
}

if (import.meta.main) {
  const root = process.argv[2] ?? join(import.meta.dirname, "..");
  const g = readGraph(root);
  const deps = Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).dependencies ?? {});
  const c = cycles(g);
  const p = pluginImportsOfSrc(g);
  const v = violations(g, deps);
  process.stdout.write(`files: ${g.imports.size}\ncycles: ${c.length}\n${c.map((x) => `  ${x.join(" ")}\n`).join("")}`);
  process.stdout.write(`plugin files importing src/: ${p.length}\n${p.map((x) => `  ${x}\n`).join("")}`);
  process.stdout.write(`layering violations: ${v.length}\n${v.map((x) => `  ${x}\n`).join("")}`);
}
