/**
 * How a stage answers the refusing return codes, from its row of the reply table.
 * @module
 */
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE } from "../api/codes.ts";
import type { Outcome } from "./hook_runner.ts";
import type { Refusals, Reply } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";

/** The reply `table` gives a DENY-family `code`; undefined for any other code. */
export function refusalReply(code: number, table: Refusals): Reply | undefined {
  switch (code) {
    case DENY:
      return table.deny;
    case DENYSOFT:
      return table.denysoft;
    case DENY_DISCONNECT:
      return table.denyDisconnect;
    case DENYSOFT_DISCONNECT:
      return table.denysoftDisconnect;
    default:
      return undefined;
  }
}

/** Whether refuse finishes the command for `code`: DONE, or a DENY-family code. */
export function finishes(code: number): boolean {
  return code === DONE || code === DENY || code === DENYSOFT || code === DENY_DISCONNECT || code === DENYSOFT_DISCONNECT;
}

/**
 * Answers a DENY-family outcome as `table` says (the plugin's text, else the default). Returns
 * true when the command is finished: refused, or DONE (the plugin answered itself).
 */
export function refuse(s: SmtpSession, r: Outcome, table: Refusals): Promise<boolean> {
  const refused = refuseNow(s, r, table);
  return refused instanceof Promise ? refused : Promise.resolve(refused);
}

/** refuse, without a promise when nothing is waited for (no reset with plugins, no disconnect). */
export function refuseNow(s: SmtpSession, r: Outcome, table: Refusals): boolean | Promise<boolean> {
  if (r.code === DONE) return true;
  const answer = refusalReply(r.code, table);
  if (!answer) return false;
  s.send(answer, r.msg);
  const reset = table.reset ? s.resetTransactionNow() : undefined;
  const disconnect = r.code === DENY_DISCONNECT || r.code === DENYSOFT_DISCONNECT;
  return reset || disconnect ? finishRefusal(s, reset, disconnect) : true;
}

async function finishRefusal(s: SmtpSession, reset: Promise<void> | undefined, disconnect: boolean): Promise<true> {
  if (reset) await reset;
  if (disconnect) await s.disconnect();
  return true;
}
