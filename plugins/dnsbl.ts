/**
 * dnsbl: looks the client's IP address up in DNS block lists.
 *
 * Hooks: connect (starts the lookups without holding the greeting), mail and rcpt (wait for
 * them), disconnect.
 * Config files:
 *  - `dnsbl_zones`: one zone a line; `zone:message` gives the reply text (`%IP%` is replaced by
 *    the client's address), otherwise the zone's TXT record is used.
 *  - `dnsbl_allow`: addresses, or prefixes ending in `.`, never checked.
 *  - `dnsbl_rejectmsg`: lines put before the zone's text.
 * Environment: `RBLSMTPD` set and empty skips the checks; set and non-empty refuses every
 * recipient with its text (as rblsmtpd).
 * Arguments: `reject 0|1|naughty` (default 1: refuse at RCPT), `reject_type`, `loglevel`.
 * Notes: connection `dnsbl` (the text, when listed). Relay clients are not checked.
 * A lookup that fails or times out is logged and counts as not listed.
 */
import {
  DECLINED,
  DENY,
  type HookContext,
  type Hooks,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type Register,
  type Result,
  reverseIp,
} from "qpsmtpd";

export const register: Register = function (_server, ...words) {
  parsePluginArgs("dnsbl", words, { values: ["reject", "reject_type"] });
};

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The reply text when the client is listed. */
    dnsbl: string;
  }
}

type Pending = Promise<string | undefined>;
const lookups = new WeakMap<object, Pending>();

async function check(p: HookContext, zones: Array<[string, string | undefined]>): Pending {
  const ip = p.connection.remote_ip;
  const rev = reverseIp(ip);
  if (!rev) return undefined;
  const results = await Promise.all(zones.map(async ([zone, custom]) => {
    const name = `${rev}.${zone}`;
    try {
      if ((await p.dns.resolve_a(name)).length === 0) return undefined;
      if (custom) return custom.replace(/%IP%/g, ip);
      const txt = await p.dns.resolve_txt(name).catch(() => []);
      return txt[0] ?? `Blocked by ${zone}`;
    } catch (e) {
      p.log(LOGWARN, `lookup of ${name} failed: ${(e as Error).message}`);
      return undefined;
    }
  }));
  return results.find((r) => r !== undefined);
}

export const hook_connect: Hooks["connect"] = function () {
  const ip = this.connection.remote_ip;
  if (process.env["RBLSMTPD"] !== undefined || this.connection.relay_client()) return DECLINED;
  for (const a of this.qp.config_all("dnsbl_allow")) {
    const entry = a.endsWith(".") ? a : `${a}.`;
    if (`${ip}.`.startsWith(entry)) {
      this.log(LOGINFO, `skip, ${ip} is in dnsbl_allow`);
      return DECLINED;
    }
  }
  const zones = this.qp.config_all("dnsbl_zones").map((l): [string, string | undefined] => {
    const i = l.indexOf(":");
    return i < 0 ? [l.trim(), undefined] : [l.slice(0, i).trim(), l.slice(i + 1).trim()];
  });
  if (zones.length) lookups.set(this.connection, check(this, zones));
  return DECLINED;
};

/** Waits for the lookups once and records the verdict in the connection notes. */
async function verdict(p: HookContext): Promise<string | undefined> {
  const pending = lookups.get(p.connection);
  if (!pending) return undefined;
  lookups.delete(p.connection);
  const hit = await pending;
  if (!hit) {
    p.log(LOGINFO, "pass");
    return undefined;
  }
  const text = [...p.qp.config_all("dnsbl_rejectmsg"), hit].join("\n");
  p.connection.notes("dnsbl", text);
  p.adjust_karma(-1);
  return text;
}

export const hook_mail: Hooks["mail"] = function (): Result | Promise<Result> {
  // No lookup under way (no zones, or its verdict already taken): answer now, not through a promise.
  if (!lookups.has(this.connection)) return DECLINED;
  return verdict(this).then((hit) => {
    if (hit && this.options["reject"] === "naughty") this.get_reject(this.connection.notes("dnsbl"));
    return DECLINED;
  });
};

export const hook_rcpt: Hooks["rcpt"] = function (): Result | Promise<Result> {
  const rbl = process.env["RBLSMTPD"];
  if (rbl) return [DENY, [...this.qp.config_all("dnsbl_rejectmsg"), rbl.replace(/%IP%/g, this.connection.remote_ip)].join(" ")];
  if (!lookups.has(this.connection)) return rcptVerdict(this);
  return verdict(this).then(() => rcptVerdict(this));
};

function rcptVerdict(p: HookContext): Result {
  const listed = p.connection.notes("dnsbl");
  if (!listed || p.options["reject"] === "naughty" || p.connection.relay_client()) return DECLINED;
  return p.get_reject(listed);
}

export const hook_disconnect: Hooks["disconnect"] = function () {
  lookups.delete(this.connection);
  return DECLINED;
};
