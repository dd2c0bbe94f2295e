/**
 * karma: remembers how each client address behaved and keeps the naughty ones out for a while.
 *
 * Other plugins score a connection with `adjust_karma(n)` (connection note `karma`). At
 * disconnect a score at or below `-negative` counts as naughty and puts the address in the
 * penalty box for `penalty_days`; a positive score counts as nice.
 *
 * Hooks: connect (penalty box, history note), mail (a good history earns +1; the client's
 * PTR name's top-level domain is scored from `karma_tlds`), disconnect (record).
 * Config files: `karma_tlds`: lines of `tld score` (`info -3`, `de 1`).
 * Arguments: `negative 1`, `penalty_days 1`, `reject connect|naughty|0` (default connect:
 * refuse at once; naughty defers to the naughty plugin; 0 only notes), `reject_type` (default
 * temp), `db_dir DIR`, `loglevel`.
 * Notes: connection `karma` (this connection's score), `karma_history` (nice minus naughty).
 * Relay clients are never refused. Replies: `450 You were naughty. You cannot connect for N more
 * days.`.
 */
import { DECLINED, DENYSOFT, type HookContext, type Hooks, LOGINFO } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The client's history: nice connections minus naughty ones. */
    karma_history: number;
  }
}

interface History {
  nice: number;
  naughty: number;
  connects: number;
  penaltyUntil: number;
}

const key = (p: HookContext): string => `karma|${p.connection.remote_ip}`;

async function history(p: HookContext): Promise<History> {
  const raw = await p.store().get(key(p));
  return raw ? (JSON.parse(raw) as History) : { nice: 0, naughty: 0, connects: 0, penaltyUntil: 0 };
}

export const hook_connect: Hooks["connect"] = async function () {
  const h = await history(this);
  this.connection.notes("karma_history", h.nice - h.naughty);
  this.connection.notes("karma", this.connection.notes("karma") ?? 0);
  if (h.penaltyUntil <= this.server.now() || this.connection.relay_client()) return DECLINED;
  const days = Math.ceil((h.penaltyUntil - this.server.now()) / 86400000);
  const msg = `You were naughty. You cannot connect for ${days} more day${days === 1 ? "" : "s"}.`;
  const reject = this.options["reject"] ?? "connect";
  this.log(LOGINFO, `fail, in the penalty box for ${days} day(s)`);
  if (reject === "0") return DECLINED;
  if (reject === "naughty") {
    this.store_deferred_reject(msg);
    return DECLINED;
  }
  return [this.get_reject_type(DENYSOFT), msg];
};

export const hook_mail: Hooks["mail"] = function () {
  if ((this.connection.notes("karma_history") ?? 0) > 3) this.adjust_karma(1);
  const host = this.connection.remote_host.toLowerCase();
  const tld = host.includes(".") ? host.slice(host.lastIndexOf(".") + 1) : undefined;
  for (const line of tld ? this.qp.config_all("karma_tlds") : []) {
    const [t, score] = line.split(/\s+/);
    if (t?.toLowerCase().replace(/^\./, "") === tld && /^[+-]?\d+$/.test(score ?? "")) {
      this.adjust_karma(Number(score));
      this.log(LOGINFO, `TLD .${tld} scores ${score}`);
    }
  }
  return DECLINED;
};

export const hook_disconnect: Hooks["disconnect"] = async function () {
  const h = await history(this);
  const karma = this.connection.notes("karma") ?? 0;
  const negative = Number(this.options["negative"] ?? 1);
  h.connects++;
  if (karma <= -negative) {
    h.naughty++;
    h.penaltyUntil = this.server.now() + Number(this.options["penalty_days"] ?? 1) * 86400000;
    this.log(LOGINFO, `naughty (karma ${karma}); penalty box until ${new Date(h.penaltyUntil).toISOString()}`);
  } else if (karma > 0) h.nice++;
  await this.store().set(key(this), JSON.stringify(h), 400 * 86400);
  return DECLINED;
};
