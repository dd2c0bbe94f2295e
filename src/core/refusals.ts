/**
 * How a stage answers the refusing return codes, from its row of the reply table.
 * @module
 */
import { DENY, DENY_DISCONNECT, DENYSOFT, DENYSOFT_DISCONNECT, DONE } from "../api/codes.ts";
import type { Outcome } from "./hook_runner.ts";
import type { Refusals, Reply } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";

/**
 * Answers a DENY-family outcome as `table` says (the plugin's text, else the default). Returns
 * true when the command is finished: refused, or DONE (the plugin answered itself).
 */
export async function refuse(s: SmtpSession, r: Outcome, table: Refusals): Promise<boolean> {
  let answer: Reply;
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
  s.send(answer, r.msg);
  if (table.reset) await s.resetTransaction();
  if (r.code === DENY_DISCONNECT || r.code === DENYSOFT_DISCONNECT) await s.disconnect();
  return true;
}
