/**
 * Connects a plugin generation's `logging` hooks to the host's logger. A logging plugin runs
 * outside any session; it learns the connection that logged from its last argument.
 * @module
 */
import { DECLINED } from "../api/codes.ts";
import type { HookFn } from "../api/hooks.ts";
import { ServerCall } from "./hook_context.ts";
import type { Registry } from "./registry.ts";
import { SmtpTransaction } from "./transaction.ts";

/** Routes the host's log calls through `registry`'s logging hooks (stderr when it has none). */
export function connectLogging(registry: Registry): void {
  const chain = registry.chain("logging");
  const logger = registry.host.logger;
  if (chain.length === 0) {
    logger.sink = undefined;
    logger.sinkUpTo = Infinity;
    return;
  }
  // qpsmtpd passes a transaction to every hook; logging gets an empty one.
  const txn = new SmtpTransaction({ dir: () => registry.host.spoolDir(), threshold: 0 });
  // One context per plugin for every line: a logging call is never aborted, so nothing in it is per call.
  const calls = chain.map((e) => ({
    fn: e.fn as HookFn<"logging">,
    ctx: new ServerCall(e.plugin, "logging"),
    upTo: e.plugin.logsUpTo ?? Infinity,
  }));
  logger.sinkUpTo = Math.max(...calls.map((c) => c.upTo));
  logger.sink = (level, hook, plugin, message, connId) => {
    // As qpsmtpd: the chain goes on while plugins decline; any other answer means "logged". A
    // plugin is not asked about a line past its logs_up_to: it would have declined it.
    for (const e of calls) {
      if (level > e.upTo) continue;
      try {
        const r = e.fn.call(e.ctx, txn, level, hook, plugin, message, connId);
        if (r instanceof Promise) r.catch(() => undefined);
        else if ((Array.isArray(r) ? r[0] : r ?? DECLINED) !== DECLINED) break;
      } catch { /* a broken logger must not break mail */ }
    }
    return true;
  };
}
