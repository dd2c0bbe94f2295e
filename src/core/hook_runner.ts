/**
 * Runs a hook chain the way qpsmtpd does: in order until a plugin returns anything but
 * DECLINED; a throw or an invalid value is logged and the plugin skipped; every result is noted
 * under the plugin's name and reported to the `deny`/`ok` hooks. Each call has a time limit: a
 * call that does not settle in time is logged and counts as DECLINED, except in the queue
 * stage, where it ends the chain so the message is refused for now (451).
 * @module
 */
import {
  DECLINED,
  DENY,
  DENY_DISCONNECT,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  isReturnCode,
  LOGCRIT,
  LOGDEBUG,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  return_code,
} from "../api/codes.ts";
import type { HookArgs } from "../api/hooks.ts";
import type { HookName } from "../api/hook_names.ts";
import type { Transaction } from "../api/transaction.ts";
import { splitLines } from "../smtp/reply.ts";
import { callControl, type HookSession, ServerCall, SessionCall } from "./hook_context.ts";
import type { HookEntry, Registry } from "./registry.ts";

/** The chain's answer: the deciding code (0 when no plugin is registered, DECLINED when all declined). */
export interface Outcome {
  readonly code: number;
  readonly msg: string[];
  /** For `*_parse` hooks: the parser the deciding plugin returned. */
  readonly value?: unknown;
  /** Name of the deciding plugin. */
  readonly plugin?: string;
  /**
   * A plugin did not answer in time: in the queue stage it decided (the chain stops there); in
   * the others the chain went on, and this marks an outcome where all the rest declined (AUTH
   * then answers 454, not 535: the backend could not say).
   */
  readonly timedOut?: boolean;
}

/** A session whose hooks run: plugins' contexts, plus where each plugin's return code is noted. */
export interface RunnerSession extends HookSession {
  /** Stores `notes(<plugin>).hook_<hook>.return`, in the transaction when there is one. */
  recordReturn(plugin: string, hook: HookName, code: number): void;
  /** Resolves when the client has gone: a call begun before then is no longer waited for. */
  readonly gone: Promise<void>;
  readonly isGone: boolean;
}

export interface HookRun {
  readonly registry: Registry;
  /** The session the hooks run for; undefined for hooks outside a session. */
  readonly session?: RunnerSession;
  log(level: number, message: string, hook: string, plugin: string): void;
}

const NO_HOOKS: Outcome = { code: 0, msg: [] };
const DENY_CODES = new Set<number>([DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT]);
/** Where a call that does not answer must not let the message through to the next plugin. */
const STOP_ON_TIMEOUT = new Set<HookName>(["queue_pre", "queue"]);
/** A plugin call that keeps the event loop longer than this is logged: every connection waited. */
export const STALL_MS = 200;
const TIMED_OUT = Symbol("timed out");
const GONE = Symbol("client gone");
const THREW = Symbol("threw");

export async function runHooks<H extends HookName>(run: HookRun, hook: H, txn: Transaction, args: HookArgs[H]): Promise<Outcome> {
  const registry = run.registry;
  const chain = registry.chain(hook);
  if (chain.length === 0) return NO_HOOKS;
  let timedOut = false;
  for (const entry of chain) {
    const name = entry.plugin.escapedName;
    const raw = await call(run, entry, hook, txn, args);
    if (raw === THREW) continue;
    if (raw === TIMED_OUT || raw === GONE) {
      if (STOP_ON_TIMEOUT.has(hook)) return { code: DECLINED, msg: [], plugin: name, timedOut: true };
      timedOut ||= raw === TIMED_OUT;
      continue;
    }
    const r = normalise(raw);
    if (!r) {
      run.log(LOGERROR, `plugin ${name} returned an invalid value for ${hook}: ${safeString(raw)}`, hook, name);
      continue;
    }
    if (hook === "logging" || hook === "deny" || hook === "ok") {
      if (r.code === DECLINED) continue;
      return { ...r, plugin: name };
    }
    // Built only when someone listens: this runs for every plugin on every command.
    if (registry.host.logger.wants(LOGDEBUG)) run.log(LOGDEBUG, `${return_code(r.code)} ${r.msg.join(" ")}`.trimEnd(), hook, name);
    // The return notes and the deny/ok audit hooks belong to a session (pre-connection has none).
    if (run.session) {
      run.session.recordReturn(name, hook, r.code);
      const audit = DENY_CODES.has(r.code) ? "deny" : "ok";
      if (registry.has(audit)) await runHooks(run, audit, txn, [name, r.code, r.msg]);
    }
    if (r.code !== DECLINED) return { ...r, plugin: name };
  }
  return timedOut ? { code: DECLINED, msg: [], timedOut } : { code: DECLINED, msg: [] };
}

/** Calls one plugin with its time limit; a throw or a timeout is logged here. */
async function call(run: HookRun, entry: HookEntry, hook: HookName, txn: Transaction, args: readonly unknown[]): Promise<unknown> {
  const plugin = entry.plugin;
  const ctx = run.session ? new SessionCall(plugin, hook, run.session) : new ServerCall(plugin, hook);
  const host = run.registry.host;
  let timer: { cancel(): void } | undefined;
  const running = { plugin: plugin.escapedName, hook, since: performance.now() };
  try {
    const raw: unknown = (entry.fn as (...a: unknown[]) => unknown).call(ctx, txn, ...args);
    const held = performance.now() - running.since;
    if (held > STALL_MS) {
      run.log(
        LOGWARN,
        `plugin ${plugin.escapedName} held the event loop for ${Math.round(held)} ms in hook ${hook}: every connection waited`,
        hook,
        plugin.escapedName,
      );
    }
    if (!isThenable(raw)) return raw;
    const waits: Array<PromiseLike<unknown>> = [raw];
    if (plugin.timeoutMs > 0) {
      waits.push(new Promise<typeof TIMED_OUT>((resolve) => (timer = host.clock.after(plugin.timeoutMs, () => resolve(TIMED_OUT)))));
    }
    // A client that leaves frees its connection at once, whatever a plugin is waiting for.
    if (run.session && !run.session.isGone) waits.push(run.session.gone.then(() => GONE));
    host.running.add(running);
    const r = await Promise.race(waits);
    if (r === GONE) {
      run.log(
        LOGINFO,
        `the client left while plugin ${plugin.escapedName} was in hook ${hook}; not waiting for it`,
        hook,
        plugin.escapedName,
      );
      callControl.abort(ctx, "the client has gone");
    } else if (r === TIMED_OUT) {
      const why = `plugin ${plugin.escapedName} did not answer hook ${hook} within ${plugin.timeoutMs / 1000}s`;
      run.log(
        LOGERROR,
        `${why}; ${STOP_ON_TIMEOUT.has(hook) ? "the message is refused for now" : "going on as if it declined"}`,
        hook,
        plugin.escapedName,
      );
      callControl.abort(ctx, why);
    }
    return r;
  } catch (e) {
    run.log(
      LOGCRIT,
      `FATAL PLUGIN ERROR [${plugin.escapedName}]: ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
      hook,
      plugin.escapedName,
    );
    return THREW;
  } finally {
    timer?.cancel();
    host.running.delete(running);
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === "object" && x !== null && typeof (x as { then?: unknown }).then === "function";
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
