/**
 * fcrdns: forward-confirmed reverse DNS of the client, reported as `iprev=` in
 * Authentication-Results (RFC 8601).
 *
 * Hooks: connect.
 * Arguments: `reject 0|1|naughty` (default 0: report only), `reject_type` (default
 * disconnect), `loglevel`.
 * Results: pass (a PTR name resolves back to the address, or to its /24 for IPv4 server pools),
 * fail, permerror (no PTR), temperror (DNS failure). On pass the connection's `remote_host` is
 * the PTR name. Karma +1 on pass, -1 on fail or permerror. Relay clients and localhost skip.
 * Notes: connection `fcrdns` (the result).
 */
import { isIPv4 } from "node:net";
import { DECLINED, DENY_DISCONNECT, LOGINFO, type Hooks, type Plugin, type Result } from "qpsmtpd";

function sameNet(a: string, b: string): boolean {
  return isIPv4(a) && isIPv4(b) && a.split(".").slice(0, 3).join(".") === b.split(".").slice(0, 3).join(".");
}

function result(p: Plugin, res: "pass" | "fail" | "permerror" | "temperror", why: string): Result {
  p.connection.notes("fcrdns", res);
  p.store_auth_results(`iprev=${res} policy.iprev=${p.connection.remote_ip}${res === "pass" ? ` (${p.connection.remote_host})` : ""}`);
  if (res === "pass") {
    p.adjust_karma(1);
    p.log(LOGINFO, `pass, ${why}`);
    return DECLINED;
  }
  if (res !== "temperror") p.adjust_karma(-1);
  if (res === "temperror" || (p.options["reject"] ?? "0") === "0") {
    p.log(LOGINFO, `${res}, ${why}`);
    return DECLINED;
  }
  const msg = `Your address has no valid reverse DNS (iprev=${res})`;
  p.log(LOGINFO, `fail, ${why}`);
  if (p.options["reject"] === "naughty") {
    p.store_deferred_reject(msg);
    return DECLINED;
  }
  return [p.get_reject_type(DENY_DISCONNECT), msg];
}

export const hook_connect: Hooks["connect"] = async function () {
  const ip = this.connection.remote_ip;
  if (this.connection.relay_client() || ip === "127.0.0.1" || ip === "::1") return DECLINED;
  let names: string[];
  try {
    names = await this.resolve_ptr(ip);
  } catch (e) {
    return result(this, "temperror", (e as Error).message);
  }
  if (names.length === 0) return result(this, "permerror", "no PTR");
  let sawForward = false;
  for (const name of names.slice(0, 5)) {
    let addrs: string[];
    try {
      addrs = [...(await this.resolve_a(name)), ...(await this.resolve_aaaa(name))];
    } catch {
      continue;
    }
    sawForward ||= addrs.length > 0;
    if (addrs.some((a) => a === ip || sameNet(a, ip))) {
      this.connection.remote_host = name.replace(/\.$/, "");
      return result(this, "pass", `${name} resolves to ${ip}`);
    }
  }
  return result(this, "fail", sawForward ? "PTR names do not resolve back to the address" : "PTR names have no forward DNS");
};
