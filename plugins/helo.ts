/**
 * helo: checks the name the client gives in HELO/EHLO.
 *
 * Hooks: helo, ehlo (run the tests; with `reject 0` the reply does not wait for them), data_post
 * (replaces `X-HELO` with the name given).
 * Arguments: `policy lenient|rfc|strict` (default lenient), `reject 0|1|naughty` (default 1),
 * `reject_type` (default disconnect), `timeout` (ignored: `dns_timeout` applies), `loglevel`.
 * Config files: `badhelo`: names refused outright ("I do not believe you are NAME."), or
 * regular expressions (any of `{}[]()^$|*+?\!` in the line) refused with "Your HELO hostname is
 * not allowed"; a leading `!` refuses every name that does NOT match.
 * Tests by policy:
 *  - lenient: badhelo; `localhost` from a non-local address ("You are not localhost"); an
 *    address literal that is not the client's ("Forged IPs not accepted here"); a bare address
 *    ("Plain IP is invalid HELO hostname (RFC 2821)").
 *  - rfc: also not fully qualified, or characters outside RFC 1035; a name without A/AAAA
 *    records ("HELO hostname did not resolve"); a client address without PTR ("no rDNS for IP").
 *  - strict: also any address literal, and neither the name's addresses nor the client's PTR
 *    name agree with the other side ("That HELO hostname fails FCrDNS"). Matches extend to the
 *    same /24 (IPv4) and the same last two labels.
 * An empty name is tolerated (karma -2). Relay clients and whitelisted hosts skip.
 * Notes: connection `helo_forward_match`, `helo_reverse_match` (rfc and strict).
 * Replies: the reason with the chosen code; karma -1.
 */
import { isIP } from "node:net";
import {
  DECLINED,
  DENY_DISCONNECT,
  type HookContext,
  type Hooks,
  LOGINFO,
  parsePluginArgs,
  type Register,
  type Result,
  sameNet24,
  type Transaction,
} from "qpsmtpd";

export const register: Register = function (_server, ...words) {
  const { policy } = parsePluginArgs("helo", words, { values: ["policy", "reject", "reject_type"] }).values;
  if (policy !== undefined && !["lenient", "rfc", "strict"].includes(policy)) {
    throw new Error(`helo: policy is lenient, rfc or strict, not "${policy}"`);
  }
};

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The HELO name resolves to the client's address (or its /24). */
    helo_forward_match: number;
    /** A PTR name of the client shares the HELO name's domain. */
    helo_reverse_match: number;
  }
}

const REGEX_CHARS = /[{}[\]()^$|*+?\\!]/;

function isLocal(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

/** badhelo expressions compiled once each (undefined: not a valid expression, never matches). */
const expressions = new Map<string, RegExp | undefined>();

function compiled(source: string): RegExp | undefined {
  if (expressions.has(source)) return expressions.get(source);
  let re: RegExp | undefined;
  try {
    re = new RegExp(source);
  } catch {
    re = undefined;
  }
  if (expressions.size >= 1000) expressions.clear(); // the file changed many times: start again
  expressions.set(source, re);
  return re;
}

function badhelo(p: HookContext, host: string): string | undefined {
  const h = host.toLowerCase();
  for (const bad of p.qp.config_all("badhelo")) {
    if (!REGEX_CHARS.test(bad)) {
      if (h === bad.toLowerCase()) return `I do not believe you are ${host}.`;
      continue;
    }
    const negate = bad.startsWith("!");
    const re = compiled(negate ? bad.slice(1) : bad);
    if (re === undefined) continue;
    if (re.test(h) !== negate) return "Your HELO hostname is not allowed";
  }
  return undefined;
}

const lastTwo = (name: string): string => name.toLowerCase().replace(/\.$/, "").split(".").slice(-2).join(".");

/** Why `host` is refused, if it is: at once for the lenient tests, through DNS for the others. */
function problem(p: HookContext, host: string): string | undefined | Promise<string | undefined> {
  const ip = p.connection.remote_ip;
  const policy = p.options["policy"] ?? "lenient";
  const bad = badhelo(p, host);
  if (bad) return bad;
  if (host.toLowerCase() === "localhost" && !isLocal(ip)) return "You are not localhost";
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(host);
  if (literal && isIP(literal[1]!) && literal[1] !== ip) return "Forged IPs not accepted here";
  // An address is digits and dots, or has a colon: a name is not run through isIP's long patterns.
  if ((host.includes(":") || /^[\d.]+$/.test(host)) && isIP(host)) return "Plain IP is invalid HELO hostname (RFC 2821)";
  if (policy === "lenient") return undefined;
  if (!literal) {
    if (!host.includes(".")) return "HELO name is not fully qualified. Read RFC 2821";
    if (/[^a-zA-Z0-9.-]/.test(host)) return "HELO name contains invalid FQDN characters. Read RFC 1035";
  }
  return dnsProblem(p, host, policy, literal !== null);
}

/** The rfc and strict tests, which ask DNS. */
async function dnsProblem(p: HookContext, host: string, policy: string, literal: boolean): Promise<string | undefined> {
  const c = p.connection;
  const ip = c.remote_ip;
  if (!literal) {
    let addrs: string[];
    try {
      addrs = (await Promise.all([p.dns.resolve_a(host), p.dns.resolve_aaaa(host)])).flat();
    } catch {
      addrs = [];
      p.log(LOGINFO, `skip forward DNS for ${host}: lookup failed`);
    }
    if (addrs.some((a) => sameNet24(a, ip))) c.notes("helo_forward_match", 1);
    else if (addrs.length === 0) return "HELO hostname did not resolve";
  }
  let names: string[];
  try {
    names = await p.dns.resolve_ptr(ip);
  } catch {
    return `error getting reverse DNS for ${ip}`;
  }
  if (names.length === 0) return `no rDNS for ${ip}`;
  if (names.some((n) => n.includes(".") && lastTwo(n) === lastTwo(host))) c.notes("helo_reverse_match", 1);
  if (policy !== "strict") return undefined;
  if (literal) return "RFC 2821 allows an address literal, but we do not";
  if (!c.notes("helo_forward_match") && !c.notes("helo_reverse_match")) return "That HELO hostname fails FCrDNS";
  if (c.notes("helo_forward_match") && c.notes("helo_reverse_match")) p.adjust_karma(1);
  return undefined;
}

const background = new WeakMap<object, Promise<string | undefined>>();

function check(this: HookContext, _txn: Transaction, host: string): Result | Promise<Result> {
  if (!host) {
    this.adjust_karma(-2);
    return DECLINED;
  }
  if (this.is_immune()) return DECLINED;
  const found = problem(this, host);
  if (!(found instanceof Promise)) {
    // Decided without DNS: no promise, and nothing for data_post to wait for.
    const why = report(this, host, found);
    return this.options["reject"] === "0" ? DECLINED : answer(this, host, why);
  }
  const verdict = found.then((why) => report(this, host, why));
  if (this.options["reject"] === "0") {
    // Nothing to refuse: let the greeting go now and record the verdict when it comes.
    background.set(this.connection, verdict);
    return DECLINED;
  }
  return verdict.then((why) => answer(this, host, why));
}

/** Logs the verdict (and lowers the karma for a problem); returns it. */
function report(p: HookContext, host: string, why: string | undefined): string | undefined {
  if (why) {
    p.adjust_karma(-1);
    p.log(LOGINFO, `fail, ${host}: ${why}`);
  } else p.log(LOGINFO, "pass");
  return why;
}

function answer(p: HookContext, host: string, why: string | undefined): Result {
  return why ? p.get_reject(why, `${host}: ${why}`, DENY_DISCONNECT) : DECLINED;
}

export const hook_helo: Hooks["helo"] = check;
export const hook_ehlo: Hooks["ehlo"] = check;

export const hook_data_post: Hooks["data_post"] = function (txn) {
  const pending = background.get(this.connection);
  return pending ? pending.then(() => xHelo(this, txn)) : xHelo(this, txn);
};

function xHelo(p: HookContext, txn: Transaction): Result {
  const h = txn.header();
  h?.delete("X-HELO");
  h?.add("X-HELO", p.connection.hello_host ?? "", 0);
  return DECLINED;
}
