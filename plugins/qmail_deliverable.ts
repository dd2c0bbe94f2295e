/**
 * qmail_deliverable: asks qmail-deliverabled (Qmail::Deliverable's daemon) whether a recipient's
 * mailbox exists, so mail for unknown local users is refused at RCPT instead of bounced later.
 *
 * Protocol (Qmail::Deliverable::Client): `GET http://HOST:PORT/qd1/deliverable?ADDRESS` with the
 * lower-cased address URI-escaped; a 200 answer's body is the status as a decimal number, a 204
 * means "no answer" (counted as 0x2f, as the client does).
 * Statuses: 0 = not deliverable (refused); 0x14 = an ezmlm list, refused for the null sender;
 * 0x11, 0x21, 0x22, 0x2f, 0xfe = errors and temporary states, 0x12, 0x13, 0xf1-0xf6 = deliverable,
 * 0xff = not local: all of these pass (logged), as in qpsmtpd.
 *
 * Hooks: rcpt.
 * Arguments: `server HOST:PORT` (default 127.0.0.1:8998); `server smtproutes:[HOST:]PORT` uses
 * the host that qmail's `smtproutes` names for the recipient's domain (exact, then `.parent`
 * wildcards, then the `:host` default line), else HOST, else no check; `vpopmail_ext 0|1` is
 * accepted and has no effect (it is the daemon's setting; logged at start-up);
 * `reject 0|1|naughty` (default 1), `reject_type` (default perm). Any other word (but the
 * engine's `timeout` and `loglevel`) stops start-up; qpsmtpd fell back to its defaults instead.
 * Config files: `smtproutes` (qmail's, found through the config search path, which ends in
 * /var/qmail/control), read at start-up.
 * Skips relay clients and whitelisted hosts and senders.
 * Replies: `550 Sorry, no mailbox by that name. qd (#5.1.1)`, `550 mailing lists do not accept
 * null senders`; karma -1 each.
 * Failure policy: fail open, as qpsmtpd ("if no connection can be made, deliverability is simply
 * assumed"): a daemon that is down, refuses, answers an error or nothing within the plugin's
 * time limit (`timeout N`, else `plugin_timeout`) lets the recipient pass, logged at LOGWARN.
 * `qpsmtpd check` asks the daemon about `postmaster`.
 */
import { type Check, DECLINED, DENY, type Hooks, type Init, LOGINFO, LOGWARN, parsePluginArgs, type PluginContext } from "qpsmtpd";

interface Data {
  /** `host:port`, or a function of the recipient's domain (smtproutes); undefined = no check. */
  server: (domain: string) => string | undefined;
  label: string;
}

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const VALID = new RegExp(`^(?!.*@.*@)(${ATEXT}+(?:[@.]${ATEXT}+)*)\\.?$`);

const PASS: Readonly<Record<number, string>> = {
  0x11: "error, permission failure",
  0x12: "pass, qmail-command in dot-qmail",
  0x13: "pass, bouncesaying with program",
  0x21: "Temporarily undeliverable: group/world writable",
  0x22: "Temporarily undeliverable: sticky home directory",
  0xf1: "pass, normal delivery",
  0xf2: "pass, vpopmail dir",
  0xf3: "pass, vpopmail alias",
  0xf4: "pass, vpopmail catchall",
  0xf5: "pass, vpopmail vuser",
  0xf6: "pass, vpopmail qmail-ext",
  0xfe: "error, SHOULD NOT HAPPEN",
  0xff: "fail, address not local",
};

/** qmail's smtproutes lines (`domain:host[:port]`, `.domain:…`, `:host`) as domain → host ("" = none). */
function parseRoutes(lines: readonly string[]): Map<string, string> {
  const routes = new Map<string, string>();
  for (const l of lines) {
    const m = /^(.*?):\[?([^\]:\s]*)/.exec(l);
    if (m) routes.set(m[1]!.toLowerCase(), m[2]!);
  }
  return routes;
}

/** The route for a domain, as Qmail::Deliverable's plugin looks it up; undefined = no route. */
function route(routes: Map<string, string>, domain: string): string | undefined {
  const pick = (k: string) => (routes.has(k) ? routes.get(k) || undefined : null);
  const exact = pick(domain);
  if (exact !== null) return exact;
  const parts = domain.split(".");
  for (let k = parts.length; k >= 1; k--) {
    const wild = pick(`.${parts.slice(-k).join(".")}`);
    if (wild !== null) return wild;
  }
  return pick("") ?? undefined;
}

export const init: Init<Data> = function (server, ...args) {
  const a = parsePluginArgs("qmail_deliverable", args, { values: ["server", "vpopmail_ext", "reject", "reject_type"] });
  const spec = a.values.server ?? "127.0.0.1:8998";
  if (a.values.vpopmail_ext !== undefined) {
    this.log(LOGWARN, `vpopmail_ext ${a.values.vpopmail_ext} has no effect here: it is qmail-deliverabled's setting`);
  }
  const m = /^smtproutes:(?:(.*?):)?(\d+)$/.exec(spec);
  if (m) {
    const routes = parseRoutes(server.config_all("smtproutes"));
    const [fallback, port] = [m[1] || undefined, m[2]!];
    this.data.server = (domain) => {
      const host = route(routes, domain) ?? fallback;
      return host === undefined ? undefined : `${host}:${port}`;
    };
  } else {
    if (!/^[A-Za-z0-9_.-]+:\d+$/.test(spec) && !/^\[[0-9a-fA-F:.]+\]:\d+$/.test(spec)) {
      throw new Error(`qmail_deliverable: server "${spec}" is not HOST:PORT or smtproutes:[HOST:]PORT`);
    }
    this.data.server = () => spec;
  }
  this.data.label = spec;
};

/** Perl's uri_escape: everything but `A-Za-z0-9-._~` as %XX of its UTF-8 bytes. */
function uriEscape(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");
}

/** The daemon's status for `address`; 0x2f when it cannot tell (as Qmail::Deliverable::Client). */
async function deliverable(p: PluginContext<Data>, address: string, server: string): Promise<number> {
  const res = await fetch(`http://${server}/qd1/deliverable?${uriEscape(address)}`, { signal: p.signal });
  const body = (await res.text()).trim();
  if (res.status === 204) return 0x2f;
  if (res.status !== 200) throw new Error(`HTTP ${res.status} from ${server}`);
  if (!/^\d+$/.test(body)) throw new Error(`${server} answered "${body.slice(0, 40)}", not a status`);
  return Number(body);
}

export const hook_rcpt: Hooks<Data>["rcpt"] = async function (txn, rcpt) {
  if (this.is_immune()) return DECLINED;
  const address = rcpt.address().toLowerCase();
  if (!VALID.test(address)) {
    this.log(LOGINFO, `skip, ${address} is not an address qmail-deliverabled can check`);
    return DECLINED;
  }
  const server = this.data.server((rcpt.host ?? "").toLowerCase());
  if (server === undefined) {
    this.log(LOGINFO, `skip, no smtproutes server for ${rcpt.host}`);
    return DECLINED;
  }
  let rv: number;
  try {
    rv = await deliverable(this, address, server);
  } catch (e) {
    this.log(LOGWARN, `error checking ${address}, assuming deliverable: ${(e as Error).message}`);
    return DECLINED;
  }
  if (rv === 0x14) {
    if (txn.sender()?.isNull() ?? true) {
      this.adjust_karma(-1);
      return [DENY, "mailing lists do not accept null senders"];
    }
    this.log(LOGINFO, "pass, ezmlm list");
    return DECLINED;
  }
  if (rv !== 0) {
    this.log(
      rv === 0x2f ? LOGWARN : LOGINFO,
      PASS[rv] ?? (rv === 0x2f ? "error, no answer from qmail-deliverabled" : `error, unknown: 0x${rv.toString(16)}`),
    );
    return DECLINED;
  }
  this.adjust_karma(-1);
  return this.get_reject("Sorry, no mailbox by that name. qd (#5.1.1)", `fail, ${address} is not deliverable`);
};

export const check: Check<Data> = async function () {
  const server = this.data.server("localhost");
  if (server === undefined) return [];
  try {
    await deliverable(this, "postmaster", server);
    return [];
  } catch (e) {
    return [`qmail-deliverabled at ${this.data.label} does not answer: ${(e as Error).message}`];
  }
};
