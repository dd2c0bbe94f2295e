/**
 * fcrdns: forward-confirmed reverse DNS of the client, reported as `iprev=` in
 * Authentication-Results (RFC 8601).
 *
 * Hooks: connect (starts the lookups; the greeting does not wait), mail (waits for the result
 * and refuses there when rejecting), data_post_headers (adds the `iprev` fragment).
 * Arguments: `reject 0|1|naughty` (default 0: report only), `reject_type` (default
 * disconnect), `loglevel`, `timeout` (the engine's). Any other word stops start-up.
 * Results: pass (a PTR name resolves back to the address, or to its /24 for IPv4 server pools),
 * fail, permerror (no PTR), temperror (DNS failure). On pass the connection's `remote_host` is
 * the PTR name. Karma +1 on pass, -1 on fail or permerror. Relay clients and localhost skip.
 * Notes: connection `fcrdns` (the result).
 */
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
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The iprev result: pass, fail, permerror or temperror. */
    fcrdns: "pass" | "fail" | "permerror" | "temperror";
  }
}

type Verdict = "pass" | "fail" | "permerror" | "temperror";
const pending = new WeakMap<object, Promise<Verdict>>();

async function evaluate(p: HookContext): Promise<Verdict> {
  const ip = p.connection.remote_ip;
  let names: string[];
  try {
    names = await p.dns.resolve_ptr(ip);
  } catch {
    return "temperror";
  }
  if (names.length === 0) return "permerror";
  for (const name of names.slice(0, 5)) {
    const addrs = (await Promise.all([p.dns.resolve_a(name).catch(() => []), p.dns.resolve_aaaa(name).catch(() => [])])).flat();
    if (addrs.some((a) => sameNet24(a, ip))) {
      p.connection.remote_host = name.replace(/\.$/, "");
      return "pass";
    }
  }
  return "fail";
}

// qpsmtpd's arguments, read by the hooks; any other word stops start-up.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("fcrdns", words, { values: ["reject", "reject_type"] });
};

export const hook_connect: Hooks["connect"] = function () {
  const ip = this.connection.remote_ip;
  if (this.connection.relay_client() || ip === "127.0.0.1" || ip === "::1") return DECLINED;
  pending.set(
    this.connection,
    evaluate(this).then((v) => {
      this.connection.notes("fcrdns", v);
      if (v === "pass") this.adjust_karma(1);
      else if (v !== "temperror") this.adjust_karma(-1);
      this.log(LOGINFO, `${v}${v === "pass" ? `, ${this.connection.remote_host}` : ""}`);
      return v;
    }),
  );
  return DECLINED;
};

/** The verdict, waiting for the lookups if they are still running. */
export function fcrdnsResult(p: HookContext): Promise<Verdict | undefined> {
  return pending.get(p.connection) ?? Promise.resolve(undefined);
}

export const hook_mail: Hooks["mail"] = async function (): Promise<Result> {
  const v = await fcrdnsResult(this);
  if (!v || v === "pass" || v === "temperror" || (this.options["reject"] ?? "0") === "0") return DECLINED;
  const msg = `Your address has no valid reverse DNS (iprev=${v})`;
  if (this.options["reject"] === "naughty") {
    this.store_deferred_reject(msg);
    return DECLINED;
  }
  return [this.get_reject_type(DENY_DISCONNECT), msg];
};

export const hook_data_post_headers: Hooks["data_post_headers"] = async function () {
  const v = await fcrdnsResult(this);
  if (v) {
    const c = this.connection;
    this.store_auth_results(`iprev=${v} policy.iprev=${c.remote_ip}${v === "pass" ? ` (${c.remote_host})` : ""}`);
  }
  return DECLINED;
};
