/**
 * The one place that knows which runtime runs us. Everything else uses `node:` modules and web
 * standards, which Bun and Deno both provide.
 * @module
 */

interface BunLike {
  plugin(p: { name: string; setup(build: { module(id: string, load: () => unknown): void }): void }): void;
}

const bun = (globalThis as { Bun?: BunLike }).Bun;

export const runtimeName: "bun" | "deno" | "node" = bun ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** True inside a `bun build --compile` executable (its modules live in Bun's embedded file system). */
export function isCompiled(): boolean {
  return import.meta.url.includes("$bunfs") || import.meta.url.includes("~BUN");
}

/**
 * Makes `import … from "qpsmtpd"` work in plugins loaded from disk. Bun needs a virtual module
 * (the compiled executable has no node_modules); Deno maps the name in deno.json.
 */
export function installPluginModule(api: Record<string, unknown>): void {
  bun?.plugin({
    name: "qpsmtpd-plugin-api",
    setup(build) {
      build.module("qpsmtpd", () => ({ exports: api, loader: "object" }));
    },
  });
}
