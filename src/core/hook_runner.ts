/**
 * Runs a hook chain the way qpsmtpd does: in order until a plugin returns anything but
 * DECLINED; a throw or an invalid value is logged and the plugin skipped; every result is noted
 * under the plugin's name and reported to the `deny`/`ok` hooks.
 * @module
 */
import { DECLINED, DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, isReturnCode, LOGCRIT, LOGDEBUG, LOGERROR, return_code } from "./codes.ts";
import type { HookArgs, HookName } from "./hooks.ts";
import type { Transaction } from "./transaction.ts";
import { splitLines } from "../smtp/reply.ts";
import type { Plugin } from "../plugin/plugin.ts";
import type { Registry } from "../plugin/registry.ts";

/** The chain's answer: the deciding code (0 when no plugin is registered, DECLINED when all declined). */
export interface Outcome {
  readonly code: number;
  readonly msg: string[];
  /** For `*_parse` hooks: the parser the deciding plugin returned. */
  readonly value?: unknown;
  /** Name of the deciding plugin. */
  readonly plugin?: string;
}

export interface RunContext {
  readonly registry: Registry;
  /** The `this` for a plugin's hook call. */
  view(plugin: Plugin, hook: HookName): Plugin;
  log(level: number, message: string, hook: string, plugin: string): void;
  /** Where per-plugin return notes go: the transaction if there is one. */
  notesFor(plugin: string, hook: string, code: number): void;
}

const NO_HOOKS: Outcome = { code: 0, msg: [] };
const DENY_CODES = new Set<number>([DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT]);

export async function runHooks<H extends HookName>(
  ctx: RunContext,
  hook: H,
  txn: Transaction,
  args: HookArgs[H],
): Promise<Outcome> {
  const chain = ctx.registry.chain(hook);
  if (chain.length === 0) return NO_HOOKS;
  for (const entry of chain) {
    const name = entry.plugin.plugin_name();
    let raw: unknown;
    try {
      raw = await (entry.fn as (...a: unknown[]) => unknown).call(ctx.view(entry.plugin, hook), txn, ...args);
    } catch (e) {
      ctx.log(LOGCRIT, `FATAL PLUGIN ERROR [${name}]: ${e instanceof Error ? e.stack ?? e.message : String(e)}`, hook, name);
      continue;
    }
    const r = normalise(raw);
    if (!r) {
      ctx.log(LOGERROR, `plugin ${name} returned an invalid value for ${hook}: ${safeString(raw)}`, hook, name);
      continue;
    }
    if (hook === "logging" || hook === "deny" || hook === "ok") {
      if (r.code === DECLINED) continue;
      return { ...r, plugin: name };
    }
    // Built only when someone listens: this runs for every plugin on every command.
    if (ctx.registry.host.logger.wants(LOGDEBUG)) ctx.log(LOGDEBUG, `${return_code(r.code)} ${r.msg.join(" ")}`.trimEnd(), hook, name);
    ctx.notesFor(name, hook, r.code);
    const audit = DENY_CODES.has(r.code) ? "deny" : "ok";
    if (ctx.registry.has(audit)) await runHooks(ctx, audit, txn, [name, r.code, r.msg]);
    if (r.code !== DECLINED) return { ...r, plugin: name };
  }
  return { code: DECLINED, msg: [] };
}

function normalise(raw: unknown): { code: number; msg: string[]; value?: unknown } | undefined {
  if (raw === undefined || raw === null) return { code: DECLINED, msg: [] };
  if (isReturnCode(raw)) return { code: raw, msg: [] };
  if (Array.isArray(raw) && isReturnCode(raw[0])) {
    const rest = raw.slice(1);
    if (rest.length === 1 && typeof rest[0] === "function") return { code: raw[0], msg: [], value: rest[0] };
    if (!rest.every((m) => typeof m === "string" || typeof m === "number")) return undefined;
    return { code: raw[0], msg: splitLines(rest.map(String)) };
  }
  return undefined;
}

function safeString(x: unknown): string {
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}
