/**
 * relay: decides whether the client may relay, by its IP address.
 *
 * Hooks: connect (and rcpt with `only 1`).
 * Config files:
 *  - `norelayclients`: addresses, CIDRs or prefixes that may never relay (checked first, wins).
 *  - `relayclients`: addresses, CIDRs (IPv4 and IPv6, bounds inclusive) or prefixes ending in
 *    `.` or `:` that may relay.
 *  - `morerelayclients`: more of the same (a flat file here; qpsmtpd used CDB).
 * Environment: `RELAYCLIENT` set means every client may relay (as under tcpserver).
 * Arguments: `only 1` rejects every recipient from a client that may not relay (550).
 * Sets: `connection.relay_client(true)`.
 */
import { DECLINED, DENY, type Hooks, LOGINFO, matchesClientEntry, parsePluginArgs, type Register } from "qpsmtpd";

export const register: Register = function (_server, ...words) {
  parsePluginArgs("relay", words, { values: ["only"] });
};

export const hook_connect: Hooks["connect"] = function () {
  const ip = this.connection.remote_ip;
  if (this.qp.config_all("norelayclients").some((e) => matchesClientEntry(e, ip))) {
    this.log(LOGINFO, `${ip} is in norelayclients`);
    return DECLINED;
  }
  if (process.env["RELAYCLIENT"] !== undefined) {
    this.connection.relay_client(true);
    this.log(LOGINFO, "pass, RELAYCLIENT is set");
    return DECLINED;
  }
  const listed = [...this.qp.config_all("relayclients"), ...this.qp.config_all("morerelayclients")];
  if (listed.some((e) => matchesClientEntry(e, ip))) {
    this.connection.relay_client(true);
    this.log(LOGINFO, `pass, ${ip} is a relay client`);
  }
  return DECLINED;
};

export const hook_rcpt: Hooks["rcpt"] = function () {
  if (this.options["only"] !== "1" || this.connection.relay_client()) return DECLINED;
  return [DENY, "Relaying denied (#5.7.1)"];
};
