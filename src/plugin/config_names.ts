/**
 * The config file names `qpsmtpd check` knows: the core's and the built-ins' (as their doc
 * blocks and code say; tests/plugin/config_names_test.ts keeps this list in step with the
 * code), the names qpsmtpd's bundle read, and what each expecting plugin needs. A file in the
 * config directory that is in none of these is reported, with the nearest known name.
 * @module
 */

/** Read by the core (README: Config). */
export const CORE_CONFIG: readonly string[] = [
  "data_rate_grace",
  "data_rate_min",
  "databytes",
  "db_dir",
  "dns_servers",
  "dns_timeout",
  "logging",
  "loglevel",
  "max_auth_failures",
  "max_errors",
  "max_header_size",
  "max_line_length",
  "max_mail",
  "max_rcpt",
  "me",
  "me-auth-results",
  "plugin_dirs",
  "plugin_timeout",
  "plugins",
  "size_threshold",
  "smtpd.yaml",
  "smtpgreeting",
  "spool_dir",
  "spool_minfree",
  "store",
  "stress_threshold",
  "stress_timeout",
  "timeout",
  "timeoutsmtpd",
  "tls_before_auth",
  "xclient_hosts",
];

/** Read by built-in plugins (and by the plugins being written for the rest of the bundle). */
export const PLUGIN_CONFIG: readonly string[] = [
  "badhelo",
  "badmailfrom",
  "badmailfromto",
  "badrcptto",
  "cleanup_sockets",
  "content_log_enabled",
  "content_log_file",
  "denysoft_greylist",
  "dkim",
  "dnsbl_allow",
  "dnsbl_rejectmsg",
  "dnsbl_zones",
  "flat_auth_pw",
  "greylist_exclude_files",
  "hosts_allow",
  "invalid_resolvable_fromhost",
  "karma_tlds",
  "limit",
  "ldap",
  "morercpthosts",
  "morerelayclients",
  "norelayclients",
  "p0f_blocked_operating_systems",
  "rcpt_regexp",
  "rcpthosts",
  "relayclients",
  "rhsbl_zones",
  "smtpauth-checkpassword",
  "smtproutes",
  "spfbehavior",
  "subject_prefix",
  "tls_ciphers",
  "tls_protocols",
  "uribl_whitelist_domains",
  "uribl_zones",
  "whitelist_zones",
  "whitelisthelo",
  "whitelisthosts",
  "whitelistrcpt",
  "whitelistsenders",
];

/** Files qpsmtpd read that nothing reads here, with what to do instead. */
export const QPSMTPD_ONLY_CONFIG: Readonly<Record<string, string>> = {
  IP: "was read only by qpsmtpd's tcpserver run script: give the address with -l",
  spool_perms: "is not read: the spool directory is always mode 0700",
  require_resolvable_fromhost: "is not read: resolvable_fromhost always checks",
  badmailfrom_patterns: "is not read: move its lines into badmailfrom (it takes regular expressions)",
  badrcptto_patterns: "is not read: move its lines into badrcptto (it takes regular expressions)",
  hbedv_deny: "belonged to virus/hbedv, which is not available: use virus/clamdscan",
  kav_deny: "belonged to virus/kavscanner, which is not available: use virus/clamdscan",
  vpopmail_mysql_dsn: "belonged to auth/auth_vpopmail_sql, which is not available: use auth/auth_vpopmaild",
  vpopmail_mysql_user: "belonged to auth/auth_vpopmail_sql, which is not available: use auth/auth_vpopmaild",
  vpopmail_mysql_pass: "belonged to auth/auth_vpopmail_sql, which is not available: use auth/auth_vpopmaild",
  "morercpthosts.cdb": "is not read (no CDB maps here): put its domains in morercpthosts, one a line",
  "morerelayclients.cdb": "is not read (no CDB maps here): put its entries in morerelayclients, one a line",
  "relayclients.cdb": "is not read (no CDB maps here): put its entries in relayclients, one a line",
};

/**
 * Files a plugin does nothing useful without: `qpsmtpd check` warns when one is missing (an
 * alias counts as its target).
 */
export const EXPECTED_FILES: Readonly<Record<string, readonly string[]>> = {
  "auth/auth_flat_file": ["flat_auth_pw"],
  badmailfrom: ["badmailfrom"],
  badmailfromto: ["badmailfromto"],
  badrcptto: ["badrcptto"],
  dns_whitelist_soft: ["whitelist_zones"],
  dnsbl: ["dnsbl_zones"],
  rcpt_ok: ["rcpthosts"],
  rcpt_regexp: ["rcpt_regexp"],
  rhsbl: ["rhsbl_zones"],
  uribl: ["uribl_zones"],
};

const KNOWN = new Set([...CORE_CONFIG, ...PLUGIN_CONFIG]);

/** Whether a config file name is read by the core or a built-in. */
export function isKnownConfig(name: string): boolean {
  return KNOWN.has(name);
}

/** Editor and package-manager leftovers, which no one expects to be read. */
export function isLeftover(name: string): boolean {
  return /(~|\.(bak|orig|old|rej|swp|dpkg-[a-z]+|ucf-[a-z]+|sample|example))$/.test(name) || /^(README|LICENSE)/i.test(name);
}

/** The known name nearest to `name` (at most two edits away), for "did you mean". */
export function nearestKnown(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of [...KNOWN, ...Object.keys(QPSMTPD_ONLY_CONFIG)]) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}
