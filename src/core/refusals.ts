/**
 * How each stage answers the refusing return codes: one table per stage instead of one switch
 * per command (reference §2.1).
 * @module
 */
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE } from "./codes.ts";
import type { Outcome } from "./hook_runner.ts";
import type { Session } from "./session.ts";

type Answer = readonly [code: number, defaultText: string];

export interface Refusals {
  readonly deny: Answer;
  readonly denysoft: Answer;
  readonly denyDisconnect: Answer;
  readonly denysoftDisconnect: Answer;
  /** Reset the transaction after a refusal. */
  readonly reset?: boolean;
}

/**
 * Answers a DENY-family outcome as `table` says (the plugin's text, else the default). Returns
 * true when the command is finished: refused, or DONE (the plugin answered itself).
 */
export async function refuse(s: Session, r: Outcome, table: Refusals): Promise<boolean> {
  let answer: Answer;
  switch (r.code) {
    case DENY:
      answer = table.deny;
      break;
    case DENYSOFT:
      answer = table.denysoft;
      break;
    case DENY_DISCONNECT:
      answer = table.denyDisconnect;
      break;
    case DENYSOFT_DISCONNECT:
      answer = table.denysoftDisconnect;
      break;
    case DONE:
      return true;
    default:
      return false;
  }
  s.reply(answer[0], r, answer[1]);
  if (table.reset) await s.reset_transaction();
  if (r.code === DENY_DISCONNECT || r.code === DENYSOFT_DISCONNECT) await s.disconnect();
  return true;
}
