/**
 * qpsmtpd's plugin names that are not files here: the old `check_*` names and the `async/*`
 * plugins (aliases of their successors, with the arguments mapped where they differ), and the
 * names qpsmtpd.ts does not implement (each with its replacement). The loader consults these
 * after the plugin directories and the built-ins, so a file or a built-in of the same name wins.
 * @module
 */

/** A name that loads another plugin. */
export interface Alias {
  /** The plugin that is loaded instead. */
  readonly target: string;
  /** The old plugin's arguments as the target's; without it they pass unchanged. */
  readonly args?: (args: readonly string[]) => string[];
  /** What differs from the old plugin, for `qpsmtpd check`. */
  readonly note?: string;
  /** Config files the old plugin read that the target does not, with what to do about them. */
  readonly oldFiles?: Readonly<Record<string, string>>;
}

/** A name qpsmtpd.ts does not implement. */
export interface Unsupported {
  /** What the plugin was. */
  readonly what: string;
  /** What to use instead. */
  readonly use: string;
}

/**
 * `action deny|denysoft|log` (check_earlytalker, async/earlytalker) as earlytalker's `reject` and
 * `reject_type`; `fallback` is the old plugin's default action. Explicit `reject`/`reject_type`
 * arguments win, as in qpsmtpd 0.94's compatibility code.
 */
export function earlytalkerArgs(args: readonly string[], fallback?: string): string[] {
  const out: string[] = [];
  let action = fallback;
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === "action" && i + 1 < args.length) action = args[i + 1]!.toLowerCase();
    else out.push(...args.slice(i, i + 2));
  }
  const has = (k: string) => out.some((a, i) => i % 2 === 0 && a === k);
  if (action === undefined || has("reject")) return out;
  if (action === "log") out.push("reject", "0");
  else {
    out.push("reject", "1");
    if (!has("reject_type")) out.push("reject_type", action === "denysoft" ? "temp" : "perm");
  }
  return out;
}

/** check_basicheaders `[DAYS]`: From and Date required, the Date within DAYS either way. */
function basicheadersArgs(args: readonly string[]): string[] {
  const days = args[0];
  const out = ["require", "From,Date"];
  if (days !== undefined && /^\d+$/.test(days)) out.push("future", days, "past", days);
  return [...out, ...args.slice(days !== undefined && /^\d+$/.test(days) ? 1 : 0)];
}

/** async/dnsbl `[disconnect]`: the positional word became `reject_type disconnect`. */
function asyncDnsblArgs(args: readonly string[]): string[] {
  return args[0]?.toLowerCase() === "disconnect" ? ["reject_type", "disconnect", ...args.slice(1)] : [...args];
}

const PATTERNS_NOTE = "regular expressions now go in the main file";

/** Old names that load a plugin of ours. */
export const ALIASES: Readonly<Record<string, Alias>> = {
  // Renamed before 0.94; Debian's 0.94 package still shipped wrappers for the first six.
  check_badmailfrom: { target: "badmailfrom", note: "refuses at MAIL, as 0.94 did (before 0.94: at RCPT)" },
  check_badmailfrom_patterns: {
    target: "badmailfrom",
    note: PATTERNS_NOTE,
    oldFiles: { badmailfrom_patterns: "is not read: move its lines into badmailfrom (it takes regular expressions)" },
  },
  check_badmailfromto: { target: "badmailfromto" },
  check_badrcptto: { target: "badrcptto" },
  check_badrcptto_patterns: {
    target: "badrcptto",
    note: PATTERNS_NOTE,
    oldFiles: { badrcptto_patterns: "is not read: move its lines into badrcptto (it takes regular expressions)" },
  },
  check_basicheaders: { target: "headers", args: basicheadersArgs },
  check_bogus_bounce: { target: "bogus_bounce" },
  check_earlytalker: { target: "earlytalker", args: (a) => earlytalkerArgs(a) },
  check_loop: { target: "loop" },
  check_norelay: { target: "relay", note: "relay reads norelayclients itself" },
  check_qmail_deliverable: { target: "qmail_deliverable" },
  check_relay: { target: "relay" },
  check_spamhelo: {
    target: "helo",
    note: "helo's lenient policy: badhelo, plus forged localhost and address literals",
  },
  relay_only: { target: "relay", args: (a) => ["only", "1", ...a] },
  require_resolvable_fromhost: {
    target: "resolvable_fromhost",
    note: "checks always (the old plugin only when the require_resolvable_fromhost file said 1)",
  },
  // qpsmtpd-async's plugins (removed after 0.94): every plugin here is asynchronous.
  "async/check_earlytalker": { target: "earlytalker", args: (a) => earlytalkerArgs(a, "denysoft") },
  "async/dns_whitelist_soft": { target: "dns_whitelist_soft" },
  "async/dnsbl": { target: "dnsbl", args: asyncDnsblArgs },
  "async/earlytalker": { target: "earlytalker", args: (a) => earlytalkerArgs(a, "denysoft") },
  "async/queue/smtp-forward": { target: "queue/smtp-forward" },
  "async/require_resolvable_fromhost": { target: "resolvable_fromhost" },
  "async/resolvable_fromhost": { target: "resolvable_fromhost" },
  "async/rhsbl": { target: "rhsbl" },
  "async/uribl": { target: "uribl" },
};

const SCANNER = "use virus/clamdscan (ClamAV's clamd)";

/** Names of qpsmtpd's bundle (and a few older ones) that are not implemented, with the replacement. */
export const UNSUPPORTED: Readonly<Record<string, Unsupported>> = {
  "virus/aveclient": { what: "the Avira AntiVir client (discontinued)", use: SCANNER },
  "virus/bitdefender": { what: "the BitDefender command-line scanner (discontinued)", use: SCANNER },
  "virus/hbedv": { what: "the H+BEDV AntiVir scanner (discontinued)", use: SCANNER },
  "virus/kavscanner": { what: "the Kaspersky command-line scanner (discontinued)", use: SCANNER },
  "virus/sophie": { what: "the Sophie daemon for Sophos (discontinued)", use: SCANNER },
  "virus/uvscan": { what: "McAfee's uvscan (discontinued)", use: SCANNER },
  "virus/check_for_hi_virus": { what: "a filter for one 2004 virus", use: SCANNER },
  dspam: { what: "the DSPAM filter (abandoned upstream, gone from Debian)", use: "use rspamd or spamassassin" },
  "auth/auth_cvm_unix_local": {
    what: "the CVM credential validation daemon (unmaintained)",
    use: "use auth/auth_dovecot (Dovecot's auth service) or auth/auth_checkpassword",
  },
  "auth/auth_vpopmail": { what: "vpopmail's Perl module, run as the vpopmail user", use: "use auth/auth_vpopmaild" },
  "auth/auth_vpopmail_sql": { what: "vpopmail's MySQL tables, read directly", use: "use auth/auth_vpopmaild" },
  "auth/authnull": { what: "a demo that accepted any password", use: "remove the line" },
  stunnel: {
    what: "qpsmtpd's stunnel/PROXY line parser (a PROXY line read as an SMTP command)",
    use:
      'mark the listener in smtpd.yaml instead: proxy_ports: [PORT] and proxy_trusted: [PROXY-ADDRESSES] (PROXY v1 and v2, read before the greeting; README "Behind HAProxy")',
  },
  karma_tool: { what: "a command-line tool, not a plugin", use: "run `qpsmtpd karma` (list, capture, release)" },
  tls_cert: { what: "a command-line tool, not a plugin", use: "run `qpsmtpd tls-cert`" },
  user_config: {
    what: "qpsmtpd 1.0's per-user config directories",
    use: "write a plugin with a user_config hook (docs/plugins.md)",
  },
};

/** The message for an unsupported name, as the loader and `qpsmtpd check` print it. */
export function unsupportedMessage(name: string, u: Unsupported): string {
  return `plugin ${name} is not available in qpsmtpd.ts (${u.what}): ${u.use}`;
}

/**
 * Every plugin name of qpsmtpd 0.94's `plugins/` directory (the tarball Debian packaged), for
 * the tests and docs/migrating.md: each resolves to a built-in or an alias, or is unsupported.
 */
export const QPSMTPD_094_BUNDLE: readonly string[] = [
  "async/dns_whitelist_soft",
  "async/dnsbl",
  "async/earlytalker",
  "async/queue/smtp-forward",
  "async/resolvable_fromhost",
  "async/rhsbl",
  "async/uribl",
  "auth/auth_checkpassword",
  "auth/auth_cvm_unix_local",
  "auth/auth_flat_file",
  "auth/auth_ldap_bind",
  "auth/auth_vpopmail",
  "auth/auth_vpopmail_sql",
  "auth/auth_vpopmaild",
  "auth/authdeny",
  "badmailfrom",
  "badmailfromto",
  "badrcptto",
  "bogus_bounce",
  "connection_time",
  "content_log",
  "count_unrecognized_commands",
  "dkim",
  "dmarc",
  "dns_whitelist_soft",
  "dnsbl",
  "domainkeys",
  "dont_require_anglebrackets",
  "dspam",
  "earlytalker",
  "fcrdns",
  "greylisting",
  "headers",
  "helo",
  "help",
  "hosts_allow",
  "http_config",
  "ident/geoip",
  "ident/p0f",
  "karma",
  "karma_tool",
  "loadcheck",
  "logging/adaptive",
  "logging/apache",
  "logging/connection_id",
  "logging/devnull",
  "logging/file",
  "logging/syslog",
  "logging/transaction_id",
  "logging/warn",
  "loop",
  "milter",
  "naughty",
  "noop_counter",
  "parse_addr_withhelo",
  "qmail_deliverable",
  "queue/exim-bsmtp",
  "queue/maildir",
  "queue/postfix-queue",
  "queue/qmail-queue",
  "queue/smtp-forward",
  "quit_fortune",
  "random_error",
  "rcpt_map",
  "rcpt_ok",
  "rcpt_regexp",
  "relay",
  "resolvable_fromhost",
  "rhsbl",
  "sender_permitted_from",
  "spamassassin",
  "stunnel",
  "tls",
  "tls_cert",
  "uribl",
  "virus/aveclient",
  "virus/bitdefender",
  "virus/clamav",
  "virus/clamdscan",
  "virus/hbedv",
  "virus/kavscanner",
  "virus/klez_filter",
  "virus/sophie",
  "virus/uvscan",
  "whitelist",
];
