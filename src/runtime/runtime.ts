/**
 * The one place that knows which runtime runs us. Everything else uses `node:` modules and web
 * standards, which Bun and Deno both provide.
 * @module
 */

import * as diagnostics from "node:diagnostics_channel";

interface BunLike {
  readonly YAML?: { parse(text: string): unknown };
  plugin(p: { name: string; setup(build: { module(id: string, load: () => unknown): void }): void }): void;
}

const bun = (globalThis as { Bun?: BunLike }).Bun;

export const runtimeName: "bun" | "deno" | "node" = bun ? "bun" : "Deno" in globalThis ? "deno" : "node";

/**
 * Bun's own YAML parser, where the runtime has one: it reads a small file in 0.2 ms, where the
 * yaml package takes 3-5 ms to load and 7-11 ms to parse its first document (measured in the
 * executable), on every start.
 */
export const nativeYamlParse: ((text: string) => unknown) | undefined = bun?.YAML ? (text) => bun.YAML!.parse(text) : undefined;

/** True inside a `bun build --compile` executable (its modules live in Bun's embedded file system). */
export function isCompiled(): boolean {
  return import.meta.url.includes("$bunfs") || import.meta.url.includes("~BUN");
}

/**
 * Makes `import … from "qpsmtpd"` work in plugins loaded from disk (and `"qpsmtpd/testing"` in
 * their tests). Bun needs virtual modules (the compiled executable has no node_modules); Deno
 * maps the names in deno.json.
 */
export function installPluginModules(
  modules: Record<string, Record<string, unknown> | (() => Promise<Record<string, unknown>>)>,
): void {
  if (!bun) return;
  // Looked up before any name is registered, while each still leads to node_modules.
  const registered = Object.entries(modules).filter(([id, m]) => typeof m !== "function" || isCompiled() || !isPackage(id));
  bun.plugin({
    name: "qpsmtpd-plugin-api",
    setup(build) {
      for (const [id, m] of registered) {
        // A loader is called when a plugin first imports the module: nothing is evaluated before.
        if (typeof m === "function") build.module(id, async () => ({ exports: await m(), loader: "object" }));
        else build.module(id, () => ({ exports: m, loader: "object" }));
      }
    },
  });
}

/**
 * Whether `id` names a package in node_modules. Run from source, such a name is left to Bun's
 * resolver: registered, it would stand for the package everywhere, also in its own loader
 * (`() => import("mailauth")`, which would call itself until the stack overflows) and in other
 * packages (mailauth's `require("tldts")`, which cannot take an asynchronous module). Only the
 * executable, which has no node_modules, needs them registered; it bundles each package.
 */
function isPackage(id: string): boolean {
  try {
    return import.meta.resolve(id).includes("/node_modules/");
  } catch {
    return false;
  }
}

/**
 * Bun's TracingChannel has no `hasSubscribers` (Node's and Deno's have it). @redis/client reads
 * its absence as "someone listens" and builds a trace context, with a copy of the arguments, for
 * every command: 2% of a message's CPU with greylisting, karma and limit on Redis. Adds the
 * getter as Node defines it (any of the five channels has a subscriber); a no-op elsewhere.
 */
export function completeTracingChannel(): void {
  const proto = Object.getPrototypeOf(diagnostics.tracingChannel("qpsmtpd")) as object;
  if ("hasSubscribers" in proto) return;
  Object.defineProperty(proto, "hasSubscribers", {
    configurable: true,
    get(this: Record<"start" | "end" | "asyncStart" | "asyncEnd" | "error", { hasSubscribers: boolean } | undefined>): boolean {
      return !!(this.start?.hasSubscribers || this.end?.hasSubscribers || this.asyncStart?.hasSubscribers ||
        this.asyncEnd?.hasSubscribers || this.error?.hasSubscribers);
    },
  });
}
