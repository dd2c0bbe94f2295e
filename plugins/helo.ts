/**
 * helo: checks the name the client gives in HELO/EHLO.
 *
 * Hooks: helo, ehlo (run the tests; with `reject 0` the reply does not wait for them), data_post
 * (adds `X-HELO`).
 * Arguments: `policy lenient|rfc|strict` (default lenient), `reject 0|1|naughty` (default 1),
 * `reject_type` (default perm), `timeout` (ignored: the resolver's applies), `loglevel`.
 * Config files: `badhelo`: names or `/regex/` patterns refused outright (`!` before a pattern
 * turns it into an exception).
 * Tests by policy:
 *  - lenient: badhelo; `localhost` from a non-local address; a bare IP address; an address
 *    literal that is not the client's address.
 *  - rfc: also a name that is not fully qualified, and a name that does not resolve.
 *  - strict: also the name's addresses must include the client's.
 * Relay clients and whitelisted hosts skip. Replies: 550 with the reason; karma -1.
 * Notes: connection `helo_forward_match` (strict), transaction header X-HELO.
 */
import { isIP } from "node:net";
import { DECLINED, LOGINFO, type Hooks, type Plugin, type Result, type Transaction } from "qpsmtpd";

function isLocal(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

function badhelo(p: Plugin, host: string): string | undefined {
  const h = host.toLowerCase();
  let refused: string | undefined;
  for (const line of p.qp.config_all("badhelo")) {
    const negate = line.startsWith("!");
    const pat = negate ? line.slice(1) : line;
    let hit: boolean;
    const rx = /^\/(.*)\/$/.exec(pat);
    try {
      hit = rx ? new RegExp(rx[1]!, "i").test(h) : pat.toLowerCase() === h;
    } catch {
      continue;
    }
    if (hit && negate) return undefined;
    if (hit) refused ??= `Sorry, I don't believe that you are ${host}.`;
  }
  return refused;
}

async function problem(p: Plugin, host: string): Promise<string | undefined> {
  const ip = p.connection.remote_ip;
  const policy = p.options["policy"] ?? "lenient";
  const bad = badhelo(p, host);
  if (bad) return bad;
  if (/^localhost(\.localdomain)?$/i.test(host) && !isLocal(ip)) return "You are not localhost";
  if (isIP(host)) return "Plain IP is invalid HELO hostname (RFC 2821)";
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(host);
  if (literal) return literal[1] === ip ? undefined : "Forged IPs not accepted here";
  if (policy === "lenient") return undefined;
  if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?$/.test(host)) return "HELO name is not fully qualified. Read RFC 5321 section 4.1.1.1";
  let addrs: string[];
  try {
    addrs = [...(await p.resolve_a(host)), ...(await p.resolve_aaaa(host))];
  } catch {
    return undefined; // DNS trouble is not the client's fault
  }
  if (addrs.length === 0) return "HELO hostname did not resolve";
  if (policy === "strict") {
    const match = addrs.includes(ip);
    p.connection.notes("helo_forward_match", match);
    if (!match) return "HELO hostname does not match your address";
  }
  return undefined;
}

const background = new WeakMap<object, Promise<string | undefined>>();

async function check(this: Plugin, _txn: Transaction, host: string): Promise<Result> {
  if (this.connection.relay_client() || this.connection.notes("whitelisthost")) return DECLINED;
  const verdict = problem(this, host).then((why) => {
    if (why) {
      this.connection.notes("helo_fail", why);
      this.adjust_karma(-1);
      this.log(LOGINFO, `fail, ${host}: ${why}`);
    } else this.log(LOGINFO, "pass");
    return why;
  });
  if (this.options["reject"] === "0") {
    // Nothing to refuse: let the greeting go now and record the verdict when it comes.
    background.set(this.connection, verdict);
    return DECLINED;
  }
  const why = await verdict;
  return why ? this.get_reject(why, `${host}: ${why}`) : DECLINED;
}

export const hook_helo: Hooks["helo"] = check;
export const hook_ehlo: Hooks["ehlo"] = check;

export const hook_data_post: Hooks["data_post"] = async function (txn) {
  await background.get(this.connection);
  const fail = this.connection.notes("helo_fail");
  txn.header()?.add("X-HELO", `${this.connection.hello_host ?? ""}${fail ? ` (${String(fail)})` : ""}`, 0);
  return DECLINED;
};
