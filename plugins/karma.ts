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
 * temp), `db_dir DIR`, `loglevel`; qpsmtpd's `strikes` is accepted with a warning (no effect).
 * Notes: connection `karma` (this connection's score), `karma_history` (nice minus naughty).
 * Relay clients are never refused. Replies: `450 You were naughty. You cannot connect for N more
 * days.`.
 * State: one JSON record per address, `karma|IP` in the store (`this.store()`: SQLite in
 * `db_dir`, or the Redis a fleet shares, the `store` config file), kept 400 days after the last
 * visit. Hosts update it with `compareAndSet`, so two disconnects at once both count.
 * Failure policy: karma fails open: when the store fails (Redis down, or no answer within its
 * time limit) a connection is let in without history and its score is not recorded; a warning
 * is logged (at most one each 10 s). `check()` reports a store that does not answer.
 */
import {
  type Check,
  DECLINED,
  DENYSOFT,
  type HookContext,
  type Hooks,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type PluginContext,
  type Register,
} from "qpsmtpd";

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
const TTL = 400 * 86400;

function parse(raw: string | undefined): History {
  return raw ? (JSON.parse(raw) as History) : { nice: 0, naughty: 0, connects: 0, penaltyUntil: 0 };
}

/** At most one warning each 10 s per plugin instance: an outage must not flood the log. */
const warned = new WeakMap<object, number>();
function warnThrottled(p: PluginContext, message: string): void {
  const now = p.server.now();
  if (now - (warned.get(p.data) ?? -Infinity) < 10_000) return;
  warned.set(p.data, now);
  p.log(LOGWARN, message);
}

/** The record as read at connect, per connection: disconnect writes against it without reading again. */
const readAtConnect = new WeakMap<object, { raw: string | undefined }>();

export const hook_connect: Hooks["connect"] = async function () {
  let h: History;
  try {
    const raw = await this.store().get(key(this));
    readAtConnect.set(this.connection, { raw });
    h = parse(raw);
  } catch (e) {
    warnThrottled(this, `store failed (${(e as Error).message}): no history, letting the client in`);
    return DECLINED;
  }
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
  const karma = this.connection.notes("karma") ?? 0;
  const naughty = karma <= -Number(this.options["negative"] ?? 1);
  const store = this.store();
  try {
    // Read, change, write back unless another host wrote in between (then again, on its record).
    let known = readAtConnect.get(this.connection);
    for (let tries = 0; tries < 10; tries++) {
      const raw = known ? known.raw : await store.get(key(this));
      known = undefined;
      const h = parse(raw);
      h.connects++;
      if (naughty) {
        h.naughty++;
        h.penaltyUntil = this.server.now() + Number(this.options["penalty_days"] ?? 1) * 86400000;
      } else if (karma > 0) h.nice++;
      if (!(await store.compareAndSet(key(this), raw, JSON.stringify(h), TTL))) {
        // Changed since we read it: read again. Changed again: another disconnect of this address
        // is racing us, so wait a little (random, growing) and the racers part.
        if (tries > 0) await new Promise((r) => setTimeout(r, Math.random() * 2 ** tries));
        continue;
      }
      if (naughty) this.log(LOGINFO, `naughty (karma ${karma}); penalty box until ${new Date(h.penaltyUntil).toISOString()}`);
      return DECLINED;
    }
    warnThrottled(this, `the record of ${this.connection.remote_ip} kept changing: this visit is not recorded`);
  } catch (e) {
    warnThrottled(this, `store failed (${(e as Error).message}): this visit is not recorded`);
  }
  return DECLINED;
};

/** Opens the store at load, so a shared one is connected before the first client comes. */
export const register: Register = function (_server, ...words) {
  const a = parsePluginArgs("karma", words, { values: ["negative", "penalty_days", "reject", "reject_type", "db_dir", "strikes"] });
  // Read as numbers at every disconnect: a word here would be NaN there, and nobody ever naughty.
  for (const k of ["negative", "penalty_days"] as const) {
    const v = a.values[k];
    if (v !== undefined && !/^\d+(?:\.\d+)?$/.test(v)) throw new Error(`karma: ${k} is a number, not "${v}"`);
  }
  if (a.values.strikes !== undefined) this.log(LOGWARN, "strikes has no effect here: a score at or below -negative is naughty");
  try {
    this.store();
  } catch (e) {
    this.log(LOGWARN, `store: ${(e as Error).message}`);
  }
};

/** For `qpsmtpd check`: a store that does not answer. */
export const check: Check = async function () {
  const store = this.store();
  try {
    await store.ping();
    return [];
  } catch (e) {
    return [`store ${store.location} does not answer (${(e as Error).message}): clients would get in without history`];
  }
};
