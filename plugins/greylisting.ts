/**
 * greylisting: defers mail from a new (address, sender, recipient) triplet; a client that
 * retries after `black_timeout` but within `grey_timeout` is let through and remembered for
 * `white_timeout`.
 *
 * Hooks: mail (when only the address is used), rcpt (when sender or recipient are), data (with
 * `deny_late 1`, the deferral waits until DATA so every recipient is recorded first).
 * Arguments (qpsmtpd's names and defaults): `remote_ip 1`, `sender 0`, `recipient 0`,
 * `black_timeout 3000` (50 min), `grey_timeout 12000` (3 h 20 min), `white_timeout 3110400`
 * (36 days), `deny_late 0`, `reject 1` (`reject 0` only logs and notes), `db_dir DIR`,
 * `loglevel`, `store_failure open|closed` (default open), `mode denysoft|testonly|off` (qpsmtpd's
 * older switch: testonly is `reject 0`, off turns the plugin off), `p0f KEY,VALUE,...` (greylist
 * only clients whose ident/p0f fingerprint matches one pair: `genre`, `detail` and `link` as
 * case-insensitive expressions, `distance` above VALUE hops, `uptime` below VALUE minutes; a client
 * p0f has not identified yet is not greylisted). qpsmtpd's `redis`, `nfslock`, `upgrade`,
 * `per_recipient` and `per_recipient_db` are accepted with a warning: the `store` config file
 * names a shared Redis here, and there are no DBM files to lock or upgrade.
 * Config files: `denysoft_greylist` (the reply text), `db_dir`, `store` (the shared store).
 * Exempt: relay clients, whitelisted hosts, senders and recipients.
 * Notes: transaction `greylist` (`new`, `early`, `white`, `pass`; `error` when the store failed).
 * Replies: `450 This mail is temporarily denied`.
 * State: the store (`this.store()`): SQLite in `db_dir` on one host, or the Redis every host of a
 * fleet shares (the `store` config file), so a triplet first seen on one host passes on another.
 * The first try is recorded with `compareAndSet`, so two hosts seeing it at once agree.
 * Failure policy: when the store fails (Redis down, or no answer within its time limit), the
 * mail passes ungreylisted and a warning is logged (at most one each 10 s); `store_failure
 * closed` defers it instead (`450 Greylisting is unavailable, try again later`). `check()`
 * reports a store that does not answer to `qpsmtpd check`.
 */
import {
  type Address,
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
  type Result,
  type Transaction,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** The verdict: new, early, white or pass; error when the store failed. */
    greylist: "new" | "early" | "white" | "pass" | "error";
    /** With `deny_late 1`: the deferral waits for DATA. */
    greylist_deferred: boolean;
  }
}

function num(p: HookContext, key: string, fallback: number): number {
  const v = p.options[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
}

function perRecipient(p: HookContext): boolean {
  return p.options["sender"] === "1" || p.options["recipient"] === "1";
}

/** Looks a triplet up and updates it; returns the verdict. */
async function verdict(p: HookContext, txn: Transaction, rcpt?: Address): Promise<"new" | "early" | "white" | "pass"> {
  const parts = ["grey"];
  if (p.options["remote_ip"] !== "0") parts.push(p.connection.remote_ip);
  if (p.options["sender"] === "1") parts.push(txn.sender()?.address().toLowerCase() ?? "");
  if (p.options["recipient"] === "1" && rcpt) parts.push(rcpt.address().toLowerCase());
  const key = parts.join("|");
  const store = p.store();
  const now = p.server.now();
  const raw = await store.get(key);
  const white = num(p, "white_timeout", 3110400);
  if (!raw) {
    // Only one host records the first try; one that loses the race sees a retry too early.
    const first = await store.compareAndSet(key, undefined, JSON.stringify({ first: now }), num(p, "grey_timeout", 12000));
    return first ? "new" : "early";
  }
  const rec = JSON.parse(raw) as { first: number; white?: boolean; renewed?: number };
  if (rec.white) {
    // white_timeout runs from the last renewal; renewing on every message would double the store
    // work for nothing, so a record is renewed once it is a hundredth of white_timeout old (at
    // most a day): it may be forgotten that much earlier than qpsmtpd would.
    if (now - (rec.renewed ?? 0) >= Math.min(86400, white / 100) * 1000) {
      await store.set(key, JSON.stringify({ first: rec.first, white: true, renewed: now }), white);
    }
    return "white";
  }
  if (now - rec.first < num(p, "black_timeout", 3000) * 1000) return "early";
  await store.set(key, JSON.stringify({ first: rec.first, white: true, renewed: now }), white);
  return "pass";
}

function exempt(p: HookContext, txn: Transaction): boolean {
  return p.is_immune() || !!txn.notes("whitelistrcpt") || (p.options["p0f"] !== undefined && !p0fMatches(p));
}

/** qpsmtpd's p0f filter: any one KEY,VALUE pair matching the client's fingerprint. */
function p0fMatches(p: HookContext): boolean {
  const seen = p.connection.notes("p0f") as Record<string, unknown> | undefined;
  if (!seen || typeof seen !== "object") return false;
  const pairs = p.options["p0f"]!.split(",");
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const [key, want] = [pairs[i]!, pairs[i + 1]!];
    const got = seen[key];
    if (got === undefined || got === null) continue;
    if (key === "distance" && Number(got) > Number(want)) return true;
    if (key === "uptime" && Number(got) < Number(want)) return true;
    if ((key === "genre" || key === "detail" || key === "link") && expression(want)?.test(String(got))) return true;
  }
  return false;
}

const expressions = new Map<string, RegExp | undefined>();
function expression(source: string): RegExp | undefined {
  if (!expressions.has(source)) {
    let re: RegExp | undefined;
    try {
      re = new RegExp(source, "i");
    } catch {
      re = undefined;
    }
    expressions.set(source, re);
  }
  return expressions.get(source);
}

/** `mode testonly` is qpsmtpd's older `reject 0`. */
function rejects(p: HookContext): boolean {
  return p.options["reject"] !== "0" && p.options["mode"] !== "testonly";
}

/** At most one warning each 10 s per plugin instance: an outage must not flood the log. */
const warned = new WeakMap<object, number>();
function warnThrottled(p: PluginContext, message: string): void {
  const now = p.server.now();
  if (now - (warned.get(p.data) ?? -Infinity) < 10_000) return;
  warned.set(p.data, now);
  p.log(LOGWARN, message);
}

async function decide(p: HookContext, txn: Transaction, rcpt?: Address): Promise<Result> {
  if (p.options["mode"] === "off" || exempt(p, txn)) return DECLINED;
  let v: Awaited<ReturnType<typeof verdict>>;
  try {
    v = await verdict(p, txn, rcpt);
  } catch (e) {
    txn.notes("greylist", "error");
    const closed = p.options["store_failure"] === "closed";
    warnThrottled(p, `store failed (${(e as Error).message}): ${closed ? "deferring" : "letting mail through ungreylisted"}`);
    return closed && rejects(p) ? [DENYSOFT, "Greylisting is unavailable, try again later"] : DECLINED;
  }
  txn.notes("greylist", v);
  p.log(LOGINFO, v);
  if (v === "white" || v === "pass") return DECLINED;
  if (!rejects(p)) return DECLINED;
  if (p.options["deny_late"] === "1") {
    txn.notes("greylist_deferred", true);
    return DECLINED;
  }
  return [DENYSOFT, p.qp.config("denysoft_greylist") ?? "This mail is temporarily denied"];
}

export const hook_mail: Hooks["mail"] = function (txn) {
  return perRecipient(this) ? DECLINED : decide(this, txn);
};

export const hook_rcpt: Hooks["rcpt"] = function (txn, rcpt) {
  return perRecipient(this) ? decide(this, txn, rcpt) : DECLINED;
};

export const hook_data: Hooks["data"] = function (txn) {
  if (!txn.notes("greylist_deferred")) return DECLINED;
  return [DENYSOFT, this.qp.config("denysoft_greylist") ?? "This mail is temporarily denied"];
};

/** Opens the store at load, so a shared one is connected before the first client comes. */
export const register: Register = function (_server, ...words) {
  const ignored = ["redis", "nfslock", "upgrade", "per_recipient", "per_recipient_db"] as const;
  const a = parsePluginArgs("greylisting", words, {
    values: [
      "remote_ip",
      "sender",
      "recipient",
      "black_timeout",
      "grey_timeout",
      "white_timeout",
      "deny_late",
      "reject",
      "db_dir",
      "store_failure",
      "mode",
      "p0f",
      ...ignored,
    ],
  });
  const mode = a.values.mode;
  if (mode !== undefined && !["denysoft", "testonly", "off"].includes(mode)) {
    throw new Error(`greylisting: mode is denysoft, testonly or off, not "${mode}"`);
  }
  for (const key of ignored) {
    if (a.values[key] === undefined) continue;
    const why = key === "redis" ? "name the Redis in the store config file (redis://HOST:PORT/DB)" : "there are no DBM files here";
    this.log(LOGWARN, `${key} has no effect here: ${why}`);
  }
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
    const then = this.options["store_failure"] === "closed" ? "mail would be deferred" : "mail would pass ungreylisted";
    return [`store ${store.location} does not answer (${(e as Error).message}): ${then}`];
  }
};
