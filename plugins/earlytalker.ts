/**
 * earlytalker: refuses clients that talk before the greeting (pipelining spam engines).
 *
 * Hooks: connect, data (and mail with `defer-reject 1`).
 * Arguments: `wait N` (seconds to hold the greeting, default 1; connection note
 * `earlytalker_wait` overrides it), `check-at CONNECT|DATA` (repeatable, default CONNECT),
 * `defer-reject 0|1` (greet anyway, refuse at MAIL), `reject 0|1|naughty` (default 1),
 * `reject_type` (default perm), `loglevel`. Any other word stops start-up, and so does a
 * `check-at` other than CONNECT or DATA. qpsmtpd's older `action log|deny|denysoft` (of
 * check_earlytalker, which loads this plugin with it translated) is refused here with what to
 * write instead.
 * The wait holds only this connection; others go on.
 * Notes: sets connection `earlytalker`.
 * Replies: `550 Connecting host started transmitting before SMTP greeting`; karma -1.
 */
import { DECLINED, type HookContext, type Hooks, LOGINFO, parsePluginArgs, type Register, type Result } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The client talked before the greeting. */
    earlytalker: number;
    /** Seconds to hold the greeting for this connection (overrides `wait`). */
    earlytalker_wait: number | string;
  }
}

interface Data {
  /** Where to check: CONNECT, DATA or both. */
  checkAt: string[];
  /** `wait` in seconds. */
  wait: number;
  deferReject: boolean;
}

export const register: Register<Data> = function (_server, ...words) {
  // `check-at` may be given more than once (qpsmtpd's); the other keys once each.
  const rest: string[] = [];
  const at: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i]!.toLowerCase() === "check-at" && i + 1 < words.length) at.push(words[++i]!.toUpperCase());
    else rest.push(words[i]!);
  }
  if (rest.some((w, i) => i % 2 === 0 && w === "action")) {
    throw new Error('earlytalker: "action" is check_earlytalker\'s: write reject 0 for log, reject 1 reject_type temp|perm for deny');
  }
  const a = parsePluginArgs("earlytalker", rest, { values: ["wait", "defer-reject", "reject", "reject_type"] });
  const bad = at.find((x) => x !== "CONNECT" && x !== "DATA");
  if (bad !== undefined) throw new Error(`earlytalker: check-at is CONNECT or DATA, not "${bad}"`);
  this.data.checkAt = at.length ? at : ["CONNECT"];
  const wait = a.values.wait ?? "1";
  if (!/^\d+(\.\d+)?$/.test(wait)) throw new Error(`earlytalker: wait is a number of seconds, not "${wait}"`);
  this.data.wait = Number(wait);
  this.data.deferReject = a.values["defer-reject"] === "1";
};

function waitMs(p: HookContext<Data>): number {
  const note = p.connection.notes("earlytalker_wait");
  return Math.max(0, Number(note ?? p.data.wait) * 1000);
}

function deny(p: HookContext<Data>): Result {
  p.connection.notes("earlytalker", 1);
  p.adjust_karma(-1);
  return p.get_reject(
    "Connecting host started transmitting before SMTP greeting",
    `${p.connection.remote_ip} started talking before we said hello`,
  );
}

export const hook_connect: Hooks<Data>["connect"] = async function () {
  if (!this.data.checkAt.includes("CONNECT") || this.is_immune()) return DECLINED;
  if (!(await this.qp.input_pending(waitMs(this)))) {
    this.log(LOGINFO, `pass, ${this.connection.remote_ip} said nothing spontaneous`);
    return DECLINED;
  }
  if (this.data.deferReject) {
    this.connection.notes("earlytalker", 1);
    this.adjust_karma(-1);
    return DECLINED;
  }
  return deny(this);
};

export const hook_data: Hooks<Data>["data"] = async function () {
  if (!this.data.checkAt.includes("DATA") || this.is_immune()) return DECLINED;
  return (await this.qp.input_pending(waitMs(this))) ? deny(this) : DECLINED;
};

export const hook_mail: Hooks<Data>["mail"] = function () {
  if (!this.data.deferReject || !this.connection.notes("earlytalker")) return DECLINED;
  return deny(this);
};
