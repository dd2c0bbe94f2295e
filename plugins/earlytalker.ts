/**
 * earlytalker: refuses clients that talk before the greeting (pipelining spam engines).
 *
 * Hooks: connect, data (and mail with `defer-reject 1`).
 * Arguments: `wait N` (seconds to hold the greeting, default 1; connection note
 * `earlytalker_wait` overrides it), `check-at CONNECT|DATA` (repeatable, default CONNECT),
 * `defer-reject 0|1` (greet anyway, refuse at MAIL), `reject 0|1|naughty` (default 1),
 * `reject_type` (default perm), `loglevel`.
 * The wait holds only this connection; others go on.
 * Notes: sets connection `earlytalker`.
 * Replies: `550 Connecting host started transmitting before SMTP greeting`; karma -1.
 */
import { DECLINED, type HookContext, type Hooks, LOGINFO, type Result } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The client talked before the greeting. */
    earlytalker: number;
    /** Seconds to hold the greeting for this connection (overrides `wait`). */
    earlytalker_wait: number | string;
  }
}

function checksAt(p: HookContext, stage: string): boolean {
  const at: string[] = [];
  for (let i = 0; i + 1 < p.args.length; i += 2) if (p.args[i]!.toLowerCase() === "check-at") at.push(p.args[i + 1]!.toUpperCase());
  return (at.length ? at : ["CONNECT"]).includes(stage);
}

function waitMs(p: HookContext): number {
  const note = p.connection.notes("earlytalker_wait");
  return Math.max(0, Number(note ?? p.options["wait"] ?? 1) * 1000);
}

function deny(p: HookContext): Result {
  p.connection.notes("earlytalker", 1);
  p.adjust_karma(-1);
  return p.get_reject(
    "Connecting host started transmitting before SMTP greeting",
    `${p.connection.remote_ip} started talking before we said hello`,
  );
}

export const hook_connect: Hooks["connect"] = async function () {
  if (!checksAt(this, "CONNECT") || this.is_immune()) return DECLINED;
  if (!(await this.qp.input_pending(waitMs(this)))) {
    this.log(LOGINFO, `pass, ${this.connection.remote_ip} said nothing spontaneous`);
    return DECLINED;
  }
  if (this.options["defer-reject"] === "1") {
    this.connection.notes("earlytalker", 1);
    this.adjust_karma(-1);
    return DECLINED;
  }
  return deny(this);
};

export const hook_data: Hooks["data"] = async function () {
  if (!checksAt(this, "DATA") || this.is_immune()) return DECLINED;
  return (await this.qp.input_pending(waitMs(this))) ? deny(this) : DECLINED;
};

export const hook_mail: Hooks["mail"] = function () {
  if (this.options["defer-reject"] !== "1" || !this.connection.notes("earlytalker")) return DECLINED;
  return deny(this);
};
