/**
 * limit: connection, message and recipient limits per client address, authenticated user and
 * envelope sender, counted in the store, so a fleet sharing a Redis counts as one MX (as
 * Haraka's limit plugin).
 *
 * Hooks: connect (concurrency, connection rate), mail (message rates), rcpt (recipient rates),
 * disconnect (closes the concurrency count).
 * Config file: `limit`, one limit a line, `WHAT PER LIMIT[/PERIOD] [MATCH]` (`#` comments):
 *
 *     concurrency  ip      5               # connections open at once
 *     connections  ip      30/1m           # new connections per minute
 *     messages     ip      100/1h          # MAIL commands per hour
 *     messages     user    500/1d          # per AUTH user
 *     messages     sender  200/1h          # per envelope sender (`<>` is one sender)
 *     recipients   ip      1000/1h         # RCPT commands
 *     recipients   user    2000/1d
 *     recipients   sender  500/1h
 *     concurrency  ip      0  127.0.0.0/8  # 0: no limit for these
 *     messages     sender  0  @example.org # a domain and its subdomains
 *     messages     user    5000/1d  alice  # one user
 *
 *  - WHAT: `concurrency` and `connections` count per `ip` only; `messages` and `recipients` per
 *    `ip`, `user` or `sender`. A client address is counted alone, an IPv6 address by its /64.
 *  - LIMIT: how many are allowed; 0 means no limit. PERIOD (rates only): a number and a unit,
 *    `s`, `m`, `h` or `d` (`/1h`, `/90s`); the window slides (the last PERIOD, not a clock hour).
 *  - MATCH: an address or CIDR (`ip`), a user name (`user`, any case), an address or `@domain`
 *    (`sender`). For each WHAT and PER, the first line whose MATCH matches wins; a line without
 *    MATCH is the default.
 *  - A command refused by a limit is not recorded by that limit, so a client that keeps trying
 *    gets in again once its window has room; it still counts against the other limits (each
 *    counts the commands it let through). A refused connection still counts as open until it
 *    is closed. Limits apply to every client, relay clients too: give your own networks and
 *    users `0` lines.
 *  - The file is re-read when it changes; a bad line stops start-up (and `qpsmtpd check` names
 *    it); a bad change later is logged and the last good limits stay.
 *  - The MAIL and RCPT limits are counted at MAIL and RCPT, before later plugins decide: put
 *    `limit` before `rcpt_ok`.
 * Arguments: `store_failure open|closed` (default open), `concurrency_ttl SECONDS` (600: an
 * address's open-connection count is forgotten that long after its last connect or disconnect,
 * so the counts of a host that crashed heal), `ipv6_prefix BITS` (64), `db_dir DIR`, `loglevel`.
 * Replies (DENYSOFT; the core sends 450 with enhanced status 4.7.1 at connect, MAIL and RCPT):
 * `Too many concurrent connections from your address, try again later`, `Connection rate limit
 * exceeded, try again later`, `Message rate limit exceeded for your address|your user|this
 * sender, try again later`, `Recipient rate limit exceeded for …, try again later`.
 * Notes: connection `limit_concurrency` (the key counted), connection `limit` (what refused:
 * `messages sender`).
 * Keys: `limit|WHAT|PER|VALUE` (`limit|messages|ip|192.0.2.7`): windows, and concurrency counters.
 * Failure policy: when the store fails (Redis down, or no answer within its time limit) nothing
 * is counted and the client is let through, with a warning (at most one each 10 s);
 * `store_failure closed` defers instead (`Cannot check sending limits now, try again later`).
 * `check()` reports bad lines and a store that does not answer to `qpsmtpd check`.
 */
import {
  type Address,
  type Check,
  cidrContains,
  DECLINED,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  ipToBigInt,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type PluginContext,
  type Result,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The store key of this connection's concurrency count (decremented at disconnect). */
    limit_concurrency: string;
    /** The limit that refused, `WHAT PER` (`messages sender`). */
    limit: string;
  }
}

type What = "concurrency" | "connections" | "messages" | "recipients";
type Per = "ip" | "user" | "sender";

interface Rule {
  readonly what: What;
  readonly per: Per;
  readonly limit: number;
  /** Seconds; 0 for concurrency. */
  readonly period: number;
  readonly match?: string;
}

interface Data {
  rules: readonly Rule[];
  /** The file's text the rules came from, to re-parse only on change. */
  text: string;
  closed: boolean;
  concurrencyTtl: number;
  v6Bits: number;
}

const PERS: Readonly<Record<What, readonly Per[]>> = {
  concurrency: ["ip"],
  connections: ["ip"],
  messages: ["ip", "user", "sender"],
  recipients: ["ip", "user", "sender"],
};
const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses the `limit` file; throws naming the first bad line. */
export function parseLimits(lines: readonly string[]): Rule[] {
  const rules: Rule[] = [];
  for (const raw of lines) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const bad = (why: string): never => {
      throw new Error(`limit: "${line}": ${why}`);
    };
    const [what, per, amount, match, extra] = line.split(/\s+/) as [string, string | undefined, string | undefined, string?, string?];
    if (!(what in PERS)) bad("the first word is concurrency, connections, messages or recipients");
    const w = what as What;
    if (!per || !PERS[w].includes(per as Per)) bad(`${w} counts per ${PERS[w].join(", ")}`);
    const m = /^(\d+)(?:\/(\d*)([smhd]))?$/.exec(amount ?? "");
    if (!m) bad(`"${amount ?? ""}" is not LIMIT or LIMIT/PERIOD (30/1m, 500/1h, 1000/1d)`);
    const [, limit, n, unit] = m!;
    if (w === "concurrency" && unit) bad("concurrency has no period");
    if (w !== "concurrency" && !unit && limit !== "0") bad("a rate needs a period: LIMIT/PERIOD (30/1m)");
    const period = unit ? Number(n || "1") * UNITS[unit]! : 0;
    if (unit && period === 0) bad("the period is 0");
    if (extra !== undefined) bad("too many words");
    if (match !== undefined && per === "ip" && !ipToBigInt(match.split("/")[0] ?? "")) bad(`"${match}" is not an address or CIDR`);
    rules.push({ what: w, per: per as Per, limit: Number(limit), period, ...(match !== undefined ? { match: match.toLowerCase() } : {}) });
  }
  return rules;
}

/** The client's counted address: itself, or for IPv6 its network of `bits` bits. */
export function clientKey(ip: string, v6Bits = 64): string {
  const a = ipToBigInt(ip);
  if (!a || a.bits === 32) return ip;
  const shift = BigInt(128 - v6Bits);
  const net = (a.value >> shift) << shift;
  const groups = Array.from({ length: 8 }, (_, i) => ((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${groups.join(":")}/${v6Bits}`;
}

function matches(rule: Rule, value: string, ip: string): boolean {
  const m = rule.match!;
  if (rule.per === "ip") return cidrContains(m, ip);
  if (rule.per === "user") return m === value;
  if (m.startsWith("@")) return value.endsWith(m) || value.endsWith(`.${m.slice(1)}`);
  return m === value;
}

/** The rule for WHAT PER and this value: the first matching line with MATCH, else the default. */
function ruleFor(rules: readonly Rule[], what: What, per: Per, value: string, ip: string): Rule | undefined {
  const mine = rules.filter((r) => r.what === what && r.per === per);
  return mine.find((r) => r.match !== undefined && matches(r, value, ip)) ?? mine.find((r) => r.match === undefined);
}

export const init: Init<Data> = function (server, ...words) {
  const o = parsePluginArgs("limit", words, { values: ["store_failure", "concurrency_ttl", "ipv6_prefix", "db_dir"] }).values;
  if (o["store_failure"] !== undefined && !["open", "closed"].includes(o["store_failure"])) {
    throw new Error(`limit: store_failure is open or closed, not "${o["store_failure"]}"`);
  }
  const lines = server.config_all("limit");
  this.data.rules = parseLimits(lines);
  this.data.text = lines.join("\n");
  this.data.closed = o["store_failure"] === "closed";
  this.data.concurrencyTtl = Number(o["concurrency_ttl"] ?? 600);
  this.data.v6Bits = Number(o["ipv6_prefix"] ?? 64);
  if (!(this.data.concurrencyTtl > 0)) throw new Error("limit: concurrency_ttl is a number of seconds above 0");
  if (!Number.isInteger(this.data.v6Bits) || this.data.v6Bits < 1 || this.data.v6Bits > 128) {
    throw new Error("limit: ipv6_prefix is 1 to 128");
  }
  try {
    this.store(); // opened at load, so a shared store is connected before the first client comes
  } catch (e) {
    this.log(LOGWARN, `store: ${(e as Error).message}`);
  }
};

/** The rules of the file now: re-parsed when it changed, the last good ones when it is broken. */
function rules(p: HookContext<Data>): readonly Rule[] {
  const lines = p.qp.config_all("limit");
  const text = lines.join("\n");
  if (text === p.data.text) return p.data.rules;
  p.data.text = text;
  try {
    p.data.rules = parseLimits(lines);
  } catch (e) {
    p.log(LOGERROR, `${(e as Error).message}; keeping the previous limits`);
  }
  return p.data.rules;
}

/** At most one warning each 10 s per plugin instance: an outage must not flood the log. */
const warned = new WeakMap<object, number>();
function warnThrottled<D extends object>(p: PluginContext<D>, message: string): void {
  const now = p.server.now();
  if (now - (warned.get(p.data) ?? -Infinity) < 10_000) return;
  warned.set(p.data, now);
  p.log(LOGWARN, message);
}

/** Runs the store work of a hook; a store failure lets the client through or defers (store_failure). */
async function guarded(p: HookContext<Data>, work: () => Promise<Result>): Promise<Result> {
  try {
    return await work();
  } catch (e) {
    warnThrottled(p, `store failed (${(e as Error).message}): ${p.data.closed ? "deferring" : "not counting, letting the client through"}`);
    return p.data.closed ? [DENYSOFT, "Cannot check sending limits now, try again later"] : DECLINED;
  }
}

const WHO: Readonly<Record<Per, string>> = { ip: "your address", user: "your user", sender: "this sender" };

/**
 * Counts one event of `what` for each PER that has a limit, all at once (one round trip to
 * Redis); a limit exceeded refuses. The limit that refuses does not record the event; the others
 * do (each counts the commands it let through, as Haraka's count every attempt).
 */
async function rates(p: HookContext<Data>, what: "messages" | "recipients", sender: Address | undefined): Promise<Result> {
  const ip = p.connection.remote_ip;
  const values: Record<Per, string | undefined> = {
    ip: clientKey(ip, p.data.v6Bits),
    user: p.qp.auth_user?.toLowerCase(),
    sender: sender ? (sender.isNull() ? "<>" : sender.address().toLowerCase()) : undefined,
  };
  const all = rules(p);
  const counted: Array<{ per: Per; value: string; rule: Rule }> = [];
  for (const per of PERS[what]) {
    const value = values[per];
    const rule = value === undefined ? undefined : ruleFor(all, what, per, value, ip);
    if (value !== undefined && rule && rule.limit > 0) counted.push({ per, value, rule });
  }
  if (counted.length === 0) return DECLINED;
  const store = p.store();
  const n = await Promise.all(counted.map((c) => store.hit(`limit|${what}|${c.per}|${c.value}`, c.rule.period, { limit: c.rule.limit })));
  const i = counted.findIndex((c, j) => n[j]! > c.rule.limit);
  if (i < 0) return DECLINED;
  const c = counted[i]!;
  p.connection.notes("limit", `${what} ${c.per}`);
  p.log(LOGINFO, `${what} per ${c.per} ${c.value}: ${n[i]} in ${c.rule.period} s, over ${c.rule.limit}`);
  return [DENYSOFT, `${what === "messages" ? "Message" : "Recipient"} rate limit exceeded for ${WHO[c.per]}, try again later`];
}

export const hook_connect: Hooks<Data>["connect"] = function () {
  return guarded(this, async () => {
    const ip = this.connection.remote_ip;
    const key = clientKey(ip, this.data.v6Bits);
    const all = rules(this);
    const store = this.store();
    const rate = ruleFor(all, "connections", "ip", key, ip);
    const conc = ruleFor(all, "concurrency", "ip", key, ip);
    const ckey = `limit|concurrency|ip|${key}`;
    // Both at once (one round trip); disconnect takes back the count even when the rate refuses.
    const [made, open] = await Promise.all([
      rate && rate.limit > 0 ? store.hit(`limit|connections|ip|${key}`, rate.period, { limit: rate.limit }) : undefined,
      conc && conc.limit > 0 ? store.incr(ckey, 1, this.data.concurrencyTtl) : undefined,
    ]);
    if (open !== undefined) this.connection.notes("limit_concurrency", ckey);
    if (made !== undefined && made > rate!.limit) {
      this.connection.notes("limit", "connections ip");
      this.log(LOGINFO, `connections from ${key}: ${made} in ${rate!.period} s, over ${rate!.limit}`);
      return [DENYSOFT, "Connection rate limit exceeded, try again later"];
    }
    if (open === undefined) return DECLINED;
    if (open < 1) {
      // Below one: counts lost to a crash healed past zero. This connection is the one we know of.
      await store.set(ckey, "1", this.data.concurrencyTtl);
      return DECLINED;
    }
    if (open <= conc!.limit) return DECLINED;
    this.connection.notes("limit", "concurrency ip");
    this.log(LOGINFO, `${open} connections open from ${key}, over ${conc!.limit}`);
    return [DENYSOFT, "Too many concurrent connections from your address, try again later"];
  });
};

export const hook_disconnect: Hooks<Data>["disconnect"] = async function () {
  const key = this.connection.notes("limit_concurrency");
  if (key === undefined) return DECLINED;
  try {
    await this.store().incr(key, -1, this.data.concurrencyTtl);
  } catch (e) {
    warnThrottled(this, `store failed (${(e as Error).message}): an open connection stays counted until concurrency_ttl`);
  }
  return DECLINED;
};

// The sender is the hook's argument: the transaction has it only once MAIL is accepted.
export const hook_mail: Hooks<Data>["mail"] = function (_txn, sender) {
  return guarded(this, () => rates(this, "messages", sender));
};

export const hook_rcpt: Hooks<Data>["rcpt"] = function (txn) {
  return guarded(this, () => rates(this, "recipients", txn.sender()));
};

/** For `qpsmtpd check`: the file's lines and the store. */
export const check: Check<Data> = async function (server) {
  const out: string[] = [];
  try {
    parseLimits(server.config_all("limit"));
  } catch (e) {
    out.push((e as Error).message);
  }
  if (server.config_all("limit").length === 0) out.push("the limit file is empty or missing: nothing is limited");
  const store = this.store();
  try {
    await store.ping();
  } catch (e) {
    out.push(
      `store ${store.location} does not answer (${(e as Error).message}): limits would ${
        this.data.closed ? "defer every client" : "not be enforced"
      }`,
    );
  }
  return out;
};
