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
  /** Calls `fn` when the client goes (not if it has gone already); returns what stops watching. */
  onGone(fn: () => void): () => void;
}

export interface HookRun {
  readonly registry: Registry;
  /** The session the hooks run for; undefined for hooks outside a session. */
  readonly session?: RunnerSession;
  log(level: number, message: string, hook: string, plugin: string): void;
}

/** The outcome of a hook nobody registered. */
export const NO_HOOKS: Outcome = { code: 0, msg: [] };
const DENY_CODES = new Set<number>([DENY, DENYSOFT, DENY_DISCONNECT, DENYSOFT_DISCONNECT]);
/** Where a call that does not answer must not let the message through to the next plugin. */
const STOP_ON_TIMEOUT = new Set<HookName>(["queue_pre", "queue"]);
/** A plugin call that keeps the event loop longer than this is logged: every connection waited. */
export const STALL_MS = 200;
const TIMED_OUT = Symbol("timed out");
const GONE = Symbol("client gone");
const THREW = Symbol("threw");

/** What `decide` says about one plugin's answer: the chain's outcome, or go on to the next plugin. */
const NEXT = Symbol("next plugin");
type Step = Outcome | typeof NEXT;
/** The outcome of a hook nobody registered. */
export const NO_HOOKS_DONE: Promise<Outcome> = Promise.resolve(NO_HOOKS);

/**
 * Runs `hook`'s chain. A plugin that answers synchronously is not awaited: the chain only turns
 * asynchronous at the first plugin that returns a promise (or when a deny/ok audit hook is
 * registered), so a hook nobody registered, or one whose plugins all answer at once, costs no
 * await per plugin.
 */
export function runHooks<H extends HookName>(run: HookRun, hook: H, txn: Transaction, args: HookArgs[H]): Promise<Outcome> {
  const r = runHooksNow(run, hook, txn, args);
  return r instanceof Promise ? r : Promise.resolve(r);
}

/** runHooks, with the outcome itself when every plugin answered at once (the caller awaits only a promise). */
export function runHooksNow<H extends HookName>(run: HookRun, hook: H, txn: Transaction, args: HookArgs[H]): Outcome | Promise<Outcome> {
  const chain = run.registry.chain(hook);
  if (chain.length === 0) return NO_HOOKS;
  // Every plugin gets the same arguments: the array is made once per chain, not per call.
  const argv = [txn, ...args];
  for (let i = 0; i < chain.length; i++) {
    const entry = chain[i]!;
    const raw = call(run, entry, hook, argv);
    // A call that answered at once cannot have timed out: the chain's state is needed only from a promise on.
    if (raw instanceof Promise) {
      const state = { timedOut: false };
      return finishChain(run, hook, txn, argv, chain, i + 1, decideLater(run, hook, txn, entry, raw, state), state);
    }
    const step = decide(run, hook, txn, entry, raw, SYNC);
    if (step === NEXT) continue;
    if (step instanceof Promise) return finishChain(run, hook, txn, argv, chain, i + 1, step, { timedOut: false });
    return step;
  }
  return ALL_DECLINED;
}

/** The rest of a chain once a plugin answered with a promise. */
async function finishChain(
  run: HookRun,
  hook: HookName,
  txn: Transaction,
  argv: readonly unknown[],
  chain: readonly HookEntry[],
  next: number,
  pending: Promise<Step>,
  state: { timedOut: boolean },
): Promise<Outcome> {
  let step = await pending;
  for (let i = next; step === NEXT; i++) {
    if (i >= chain.length) return declined(state);
    step = await callAndDecide(run, chain[i]!, hook, txn, argv, state);
  }
  return step;
}

/** Calls one plugin with `argv` (the transaction, then the hook's arguments) and decides on its answer: at once when it answered at once. */
function callAndDecide(
  run: HookRun,
  entry: HookEntry,
  hook: HookName,
  txn: Transaction,
  argv: readonly unknown[],
  state: { timedOut: boolean },
): Step | Promise<Step> {
  const raw = call(run, entry, hook, argv);
  return raw instanceof Promise ? decideLater(run, hook, txn, entry, raw, state) : decide(run, hook, txn, entry, raw, state);
}

/** decide, once a plugin's promise has settled (in a function of its own: the closure is made only for a promise). */
function decideLater(
  run: HookRun,
  hook: HookName,
  txn: Transaction,
  entry: HookEntry,
  raw: Promise<unknown>,
  state: { timedOut: boolean },
): Promise<Step> {
  return raw.then((r) => decide(run, hook, txn, entry, r, state));
}

/** No message lines: shared, so frozen. */
const NO_MSG = Object.freeze([]) as unknown as string[];
const ALL_DECLINED: Outcome = Object.freeze({ code: DECLINED, msg: NO_MSG });
const DECLINED_AFTER_TIMEOUT: Outcome = Object.freeze({ code: DECLINED, msg: NO_MSG, timedOut: true });
/**
 * The state of a chain whose plugins all answered at once: nothing in it changes. (runHooksNow
 * calls and decides itself rather than through callAndDecide for this: measured, the chain's
 * object and the arrays the JIT then kept cost 36 heap objects a message.)
 */
const SYNC = Object.freeze({ timedOut: false });

function declined(state: { timedOut: boolean }): Outcome {
  return state.timedOut ? DECLINED_AFTER_TIMEOUT : ALL_DECLINED;
}

/** One plugin's answer: the chain's outcome, NEXT, or a promise of either (a deny/ok audit runs first). */
function decide(
  run: HookRun,
  hook: HookName,
  txn: Transaction,
  entry: HookEntry,
  raw: unknown,
  state: { timedOut: boolean },
): Step | Promise<Step> {
  const name = entry.plugin.escapedName;
  if (raw === THREW) return NEXT;
  if (raw === TIMED_OUT || raw === GONE) {
    if (STOP_ON_TIMEOUT.has(hook)) return { code: DECLINED, msg: [], plugin: name, timedOut: true };
    state.timedOut ||= raw === TIMED_OUT;
    return NEXT;
  }
  const r = normalise(raw);
  if (!r) {
    run.log(LOGERROR, `plugin ${name} returned an invalid value for ${hook}: ${safeString(raw)}`, hook, name);
    run.registry.host.metrics.pluginError(name, "invalid");
    return NEXT;
  }
  if (hook === "logging" || hook === "deny" || hook === "ok") return r.code === DECLINED ? NEXT : decided(r, name);
  const registry = run.registry;
  // Built only when someone listens: this runs for every plugin on every command.
  if (registry.host.logger.wants(LOGDEBUG)) run.log(LOGDEBUG, `${return_code(r.code)} ${r.msg.join(" ")}`.trimEnd(), hook, name);
  // The return notes and the deny/ok audit hooks belong to a session (pre-connection has none).
  if (run.session) {
    run.session.recordReturn(name, hook, r.code);
    const audit = DENY_CODES.has(r.code) ? "deny" : "ok";
    if (registry.has(audit)) {
      // The audit plugins get their own copy of the lines: a bare code's are shared (and frozen).
      return runHooks(run, audit, txn, [name, r.code, [...r.msg]]).then(() => r.code !== DECLINED ? decided(r, name) : NEXT);
    }
  }
  return r.code !== DECLINED ? decided(r, name) : NEXT;
}

function decided(r: { code: number; msg: string[]; value?: unknown }, plugin: string): Outcome {
  return r.value === undefined ? { code: r.code, msg: r.msg, plugin } : { code: r.code, msg: r.msg, value: r.value, plugin };
}

/**
 * Calls one plugin. A synchronous answer (or a throw, as THREW) comes back at once; a promise is
 * raced against the plugin's time limit and the client's leaving. A throw or a timeout is logged here.
 */
function call(run: HookRun, entry: HookEntry, hook: HookName, argv: readonly unknown[]): unknown {
  const plugin = entry.plugin;
  const ctx = run.session ? new SessionCall(plugin, hook, run.session) : new ServerCall(plugin, hook);
  const since = performance.now();
  let raw: unknown;
  try {
    raw = invoke(entry.fn as (...a: unknown[]) => unknown, ctx, argv);
  } catch (e) {
    fatal(run, plugin, hook, e);
    run.registry.host.metrics.pluginCall(hook, plugin.escapedName, (performance.now() - since) / 1000, "threw");
    return THREW;
  }
  const held = performance.now() - since;
  const pending = isThenable(raw);
  if (!pending) run.registry.host.metrics.pluginCall(hook, plugin.escapedName, held / 1000);
  if (held > STALL_MS) {
    run.log(
      LOGWARN,
      `plugin ${plugin.escapedName} held the event loop for ${Math.round(held)} ms in hook ${hook}: every connection waited`,
      hook,
      plugin.escapedName,
    );
  }
  return pending ? settle(run, plugin, hook, ctx, raw as PromiseLike<unknown>, since) : raw;
}

/** `fn.apply(ctx, argv)`, with a direct call for the usual counts: apply's spread of the array costs every call. */
function invoke(fn: (...a: unknown[]) => unknown, ctx: unknown, argv: readonly unknown[]): unknown {
  switch (argv.length) {
    case 1:
      return fn.call(ctx, argv[0]);
    case 2:
      return fn.call(ctx, argv[0], argv[1]);
    case 3:
      return fn.call(ctx, argv[0], argv[1], argv[2]);
    case 4:
      return fn.call(ctx, argv[0], argv[1], argv[2], argv[3]);
    default:
      return fn.apply(ctx, argv as unknown[]);
  }
}

function fatal(run: HookRun, plugin: HookEntry["plugin"], hook: HookName, e: unknown): void {
  run.log(
    LOGCRIT,
    `FATAL PLUGIN ERROR [${plugin.escapedName}]: ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
    hook,
    plugin.escapedName,
  );
}

/**
 * Waits for a plugin's promise within its time limit, or until the client leaves. Built on
 * callbacks rather than Promise.race, so a finished call leaves nothing behind on the session
 * (a race would keep a reaction on the session's `gone` promise for as long as the session lives).
 */
function settle(
  run: HookRun,
  plugin: HookEntry["plugin"],
  hook: HookName,
  ctx: ServerCall,
  raw: PromiseLike<unknown>,
  since: number,
): Promise<unknown> {
  const host = run.registry.host;
  const session = run.session;
  const running = { plugin: plugin.escapedName, hook, since };
  host.running.add(running);
  return new Promise<unknown>((resolve) => {
    let done = false;
    let timer: { cancel(): void } | undefined;
    let unwatch: (() => void) | undefined;
    const finish = (r: unknown): void => {
      if (done) return;
      done = true;
      timer?.cancel();
      unwatch?.();
      host.running.delete(running);
      host.metrics.pluginCall(
        hook,
        plugin.escapedName,
        (performance.now() - since) / 1000,
        r === TIMED_OUT ? "timeout" : r === THREW ? "threw" : undefined,
      );
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
      resolve(r);
    };
    const failed = (e: unknown): void => {
      if (done) return;
      fatal(run, plugin, hook, e);
      finish(THREW);
    };
    try {
      raw.then(finish, failed);
    } catch (e) {
      failed(e); // a thenable whose then() throws
    }
    if (done) return;
    if (plugin.timeoutMs > 0) timer = host.clock.after(plugin.timeoutMs, () => finish(TIMED_OUT));
    // A client that leaves frees its connection at once, whatever a plugin is waiting for.
    if (session && !session.isGone) unwatch = session.onGone(() => finish(GONE));
  });
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === "object" && x !== null && typeof (x as { then?: unknown }).then === "function";
}

interface Answer {
  readonly code: number;
  readonly msg: string[];
  readonly value?: unknown;
}

/** Each bare code's answer, made at its first use: most plugin calls return one, or nothing. */
const BARE = new Map<number, Answer>();

function bare(code: unknown): Answer | undefined {
  if (!isReturnCode(code)) return undefined;
  let a = BARE.get(code);
  if (a === undefined) BARE.set(code, a = Object.freeze({ code, msg: NO_MSG }));
  return a;
}

function normalise(raw: unknown): Answer | undefined {
  if (raw === undefined || raw === null) return bare(DECLINED);
  if (typeof raw === "number") return bare(raw);
  if (Array.isArray(raw) && isReturnCode(raw[0])) {
    if (raw.length === 1) return bare(raw[0]);
    if (raw.length === 2 && typeof raw[1] === "function") return { code: raw[0], msg: NO_MSG, value: raw[1] };
    for (let i = 1; i < raw.length; i++) {
      if (typeof raw[i] !== "string" && typeof raw[i] !== "number") return undefined;
    }
    return { code: raw[0], msg: splitLines(raw, 1) };
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
