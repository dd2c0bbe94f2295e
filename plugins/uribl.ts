/**
 * uribl: looks up the domains of the links in a message in URI block lists (SURBL, URIBL
 * style).
 *
 * Hooks: data_post.
 * Config files:
 *  - `uribl_zones`: `zone [mask] [action]` a line. `mask` is a bitmask or a comma list of
 *    bits matched against the last octet of the 127.0.0.X answer (default: any answer);
 *    `action` is `add-header` (default: `X-URIBL` headers), `deny` or `denysoft`.
 *  - `uribl_whitelist_domains`: domains never looked up.
 * Arguments: `action` (the default action: add-header, deny or denysoft), `scan-headers 1` (also
 * scan the header; qpsmtpd's other name `check-headers` too), `checkip 1` (also look up
 * IP-address links, reversed; default off), `max_lookups N` (default 30), `loglevel`. The
 * switches take 1/yes/true/on or 0/no/false/off (qpsmtpd wrote `checkip yes`). Any other word,
 * or a value that is none of these, stops start-up. Only the first 1 MB of the message is
 * scanned.
 * Domains are reduced to their registered part by the Public Suffix List (`www.x.example.co.uk`
 * → `x.example.co.uk`; the tldts package).
 * Replies: `550 <domain> is listed by <zone>` (451 for denysoft).
 */
import { isIPv4 } from "node:net";
import { DECLINED, DENY, DENYSOFT, type Hooks, LOGINFO, LOGWARN, parsePluginArgs, type Register, type Result, reverseIp } from "qpsmtpd";

// Imported when first needed, not at the top: the Public Suffix List takes about 5 ms to load,
// which start-up need not wait for. The promise is kept: an import() of a loaded module still
// costs 1.5-3 µs in the executable, and this runs for every link in a message.
let tldts: Promise<typeof import("tldts")> | undefined;

/**
 * The registered domain of a host by the Public Suffix List (ICANN and private sections, from
 * the tldts package, as dmarc uses): `www.x.example.co.uk` → `x.example.co.uk`. A name under an
 * unlisted TLD keeps its last two labels; an address or a bare label stays as it is.
 */
export async function registeredDomain(host: string): Promise<string> {
  const h = host.toLowerCase().replace(/\.$/, "");
  const { getDomain } = await (tldts ??= import("tldts"));
  return getDomain(h, { allowPrivateDomains: true }) ?? h;
}

const URI = /\b(?:https?:\/\/|www\.)([a-z0-9.-]+\.[a-z]{2,}|\d{1,3}(?:\.\d{1,3}){3})/gi;

export function linkHosts(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(URI)) {
    const whole = m[0].toLowerCase();
    out.add(whole.startsWith("www.") && !whole.startsWith("http") ? `www.${m[1]!.toLowerCase()}` : m[1]!.toLowerCase());
  }
  return [...out];
}

function bitsOf(mask: string | undefined): number | undefined {
  if (!mask) return undefined;
  if (/^\d+$/.test(mask)) return Number(mask);
  return mask.split(",").reduce((a, b) => a | Number(b), 0);
}

const ACTIONS = ["add-header", "deny", "denysoft"];

interface Data {
  action: string;
  scanHeaders: boolean;
  checkip: boolean;
  maxLookups: number;
}

/** A switch's value: qpsmtpd's truthy words, or its falsy ones. */
function onOff(key: string, word: string | undefined): boolean {
  if (word === undefined || /^(0|no|false|off)$/i.test(word)) return false;
  if (/^(1|yes|true|on)$/i.test(word)) return true;
  throw new Error(`uribl: ${key} is 1 or 0 (yes or no), not "${word}"`);
}

export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("uribl", words, { values: ["action", "scan-headers", "check-headers", "checkip", "max_lookups"] });
  const action = a.values.action ?? "add-header";
  if (!ACTIONS.includes(action)) throw new Error(`uribl: action is add-header, deny or denysoft, not "${action}"`);
  const max = a.values.max_lookups ?? "30";
  if (!/^\d+$/.test(max)) throw new Error(`uribl: max_lookups is a number, not "${max}"`);
  this.data.action = action;
  this.data.scanHeaders = onOff("scan-headers", a.values["scan-headers"]) || onOff("check-headers", a.values["check-headers"]);
  this.data.checkip = onOff("checkip", a.values.checkip);
  this.data.maxLookups = Number(max);
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn): Promise<Result> {
  const zones = this.qp.config_all("uribl_zones").map((l) => {
    const [zone, mask, action] = l.split(/\s+/);
    return { zone: zone!, mask: bitsOf(mask === "-" ? undefined : mask), action: action ?? this.data.action };
  });
  if (zones.length === 0) return DECLINED;
  let text = this.data.scanHeaders ? txn.header()?.as_string() ?? "" : "";
  for await (const chunk of txn.body_stream()) {
    text += Buffer.from(chunk).toString("latin1");
    if (text.length > 1 << 20) break;
  }
  const white = new Set(this.qp.config_all("uribl_whitelist_domains").map((d) => d.toLowerCase()));
  const names = new Set<string>();
  for (const host of linkHosts(text)) {
    if (isIPv4(host)) {
      if (this.data.checkip) names.add(reverseIp(host)!);
    } else {
      const domain = await registeredDomain(host);
      if (!white.has(domain)) names.add(domain);
    }
  }
  const max = this.data.maxLookups;
  const lookups = [...names].slice(0, max).flatMap((name) => zones.map((z) => ({ name, ...z })));
  const hits = await Promise.all(lookups.map(async (l) => {
    try {
      const answers = await this.dns.resolve_a(`${l.name}.${l.zone}`);
      const listed = answers.some((a) => l.mask === undefined || (Number(a.split(".")[3]) & l.mask) !== 0);
      return listed ? l : undefined;
    } catch (e) {
      this.log(LOGWARN, `lookup of ${l.name}.${l.zone} failed: ${(e as Error).message}`);
      return undefined;
    }
  }));
  let result: Result = DECLINED;
  for (const h of hits) {
    if (!h) continue;
    const msg = `${h.name} is listed by ${h.zone}`;
    this.log(LOGINFO, msg);
    if (h.action === "deny") return [DENY, msg];
    if (h.action === "denysoft") result = [DENYSOFT, msg];
    else txn.header()?.add("X-URIBL", msg, 0);
  }
  return result;
};
