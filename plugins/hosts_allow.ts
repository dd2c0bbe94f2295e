/**
 * hosts_allow: decides at accept time, before any SMTP, by the client's address.
 *
 * Hooks: pre-connection. Arguments: none (a word other than the engine's `timeout` and
 * `loglevel` stops start-up).
 * Config files: `hosts_allow`: lines of `CIDR CODE [message]` (IPv4 or IPv6; CODE is a return
 * code name such as DENY, DENYSOFT or OK); the first matching line decides, and OK lets the
 * client past the per-address limit.
 * Limits: the core enforces `-m/--max-from-ip` per address for every listener; this plugin adds
 * the file, and refuses with its own text when a client holds more than `max_conn_ip`.
 * Replies: `550`/`451` with the message (default "Sorry, service not available for you").
 */
import { cidrContains, DECLINED, DENYSOFT, type Hooks, LOGERROR, LOGINFO, OK, parsePluginArgs, type Register, return_code } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("hosts_allow", words, {});
};

export const hook_pre_connection: Hooks["pre-connection"] = function (_txn, info) {
  const ip = info.remote_ip;
  for (const line of this.server.config_all("hosts_allow")) {
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    const code = return_code(m[2]!);
    if (code === undefined) {
      this.log(LOGERROR, `hosts_allow: unknown code ${m[2]}`);
      continue;
    }
    if (!cidrContains(m[1]!, ip)) continue;
    this.log(LOGINFO, `${ip} matches ${m[1]}: ${m[2]}`);
    if (code === OK || code === DECLINED) return code;
    return m[3] ? [code, m[3]] : code;
  }
  const same = info.child_addrs.filter((a) => a === ip).length;
  if (info.max_conn_ip > 0 && same >= info.max_conn_ip) {
    return [DENYSOFT, `Sorry, too many connections from ${ip}, try again later`];
  }
  return DECLINED;
};
