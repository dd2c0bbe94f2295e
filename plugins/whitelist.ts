/**
 * whitelist: marks trusted clients, greetings, senders and recipients, so that policy plugins
 * (dnsbl, helo, badmailfrom, naughty, …) leave them alone. It grants no relaying.
 *
 * Hooks: connect, helo, ehlo, mail, rcpt.
 * Config files: `whitelisthosts` (addresses, CIDRs or prefixes ending in `.`),
 * `whitelisthelo` (names), `whitelistsenders` (addresses or `@domain`), `whitelistrcpt`
 * (addresses or `@domain`).
 * Environment: `WHITELISTCLIENT` set whitelists every client.
 * Arguments: qpsmtpd's `per_recipient` and `merge` (per-recipient whitelists from per-user config
 * directories) are accepted and have no effect (logged at start-up); any other word (but the
 * engine's `timeout` and `loglevel`) stops start-up.
 * Notes: connection `whitelisthost`, `whitelisthelo`; transaction `whitelistsender`,
 * `whitelistrcpt`.
 */
import { type Address, DECLINED, type Hooks, LOGINFO, LOGWARN, matchesClientEntry, parsePluginArgs, type Register } from "qpsmtpd";

function listed(list: readonly string[], addr: Address): boolean {
  const a = addr.address().toLowerCase();
  const host = `@${(addr.host ?? "").toLowerCase()}`;
  return list.some((e) => e.toLowerCase() === a || e.toLowerCase() === host);
}

// qpsmtpd's `per_recipient` and `merge` need its per-user config directories, which are not
// here: accepted so its configs load, and said once. Any other word stops start-up.
export const register: Register = function (_server, ...words) {
  const a = parsePluginArgs("whitelist", words, { values: ["per_recipient", "merge"] });
  const ignored = (["per_recipient", "merge"] as const).filter((k) => a.values[k] !== undefined);
  if (ignored.length) {
    this.log(LOGWARN, `${ignored.join(" and ")} ${ignored.length > 1 ? "have" : "has"} no effect: there are no per-recipient whitelists`);
  }
};

export const hook_connect: Hooks["connect"] = function () {
  const ip = this.connection.remote_ip;
  if (process.env["WHITELISTCLIENT"] !== undefined || this.qp.config_all("whitelisthosts").some((e) => matchesClientEntry(e, ip))) {
    this.connection.notes("whitelisthost", 1);
    this.log(LOGINFO, `${ip} is whitelisted`);
  }
  return DECLINED;
};

const helo: Hooks["helo"] = function (_txn, host) {
  if (this.qp.config_all("whitelisthelo").some((h) => h.toLowerCase() === host.toLowerCase())) {
    this.connection.notes("whitelisthelo", 1);
    this.log(LOGINFO, `HELO ${host} is whitelisted`);
  }
  return DECLINED;
};
export const hook_helo = helo;
export const hook_ehlo: Hooks["ehlo"] = helo;

export const hook_mail: Hooks["mail"] = function (txn, sender) {
  if (!sender.isNull() && listed(this.qp.config_all("whitelistsenders"), sender)) {
    txn.notes("whitelistsender", 1);
    this.log(LOGINFO, `sender ${sender} is whitelisted`);
  }
  return DECLINED;
};

export const hook_rcpt: Hooks["rcpt"] = function (txn, rcpt) {
  if (listed(this.qp.config_all("whitelistrcpt"), rcpt)) {
    txn.notes("whitelistrcpt", 1);
    this.log(LOGINFO, `recipient ${rcpt} is whitelisted`);
  }
  return DECLINED;
};
