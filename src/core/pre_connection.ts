/**
 * The `pre-connection` hooks: run for each accepted connection before its session starts,
 * outside any session. A refusal is answered and the connection closed.
 * @module
 */
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT } from "../api/codes.ts";
import type { PreConnectionInfo } from "../api/hooks.ts";
import { formatReply } from "../smtp/reply.ts";
import { runHooks } from "./hook_runner.ts";
import type { Registry } from "./registry.ts";
import { REPLIES, replyLines } from "./replies.ts";
import { SmtpTransaction } from "./transaction.ts";

/** Runs the pre-connection hooks; returns the reply to write before closing when a plugin refused. */
export async function preConnection(registry: Registry, info: PreConnectionInfo): Promise<string | undefined> {
  if (!registry.has("pre-connection")) return undefined;
  const host = registry.host;
  const txn = new SmtpTransaction({ dir: () => host.spoolDir(), threshold: 0 }, host.clock.now());
  const log = (level: number, message: string, hook: string, plugin: string): void => host.log(level, message, hook, plugin);
  const r = await runHooks({ registry, log }, "pre-connection", txn, [info]);
  let reply;
  if (r.code === DENY || r.code === DENY_DISCONNECT) reply = REPLIES.preConnectionDenied;
  else if (r.code === DENYSOFT || r.code === DENYSOFT_DISCONNECT) reply = REPLIES.preConnectionDeferred;
  else return undefined;
  return formatReply(reply.code, replyLines(reply, r.msg, false));
}
