/**
 * Every built-in plugin, by the name used in `config/plugins`. This static list is what
 * `bun build --compile` embeds; a test checks that every plugin file is in it.
 * @module
 */
import type { AnyPluginModule } from "qpsmtpd";
import * as arc from "./arc.ts";
import * as auth_auth_checkpassword from "./auth/auth_checkpassword.ts";
import * as auth_auth_dovecot from "./auth/auth_dovecot.ts";
import * as auth_auth_flat_file from "./auth/auth_flat_file.ts";
import * as auth_auth_imap from "./auth/auth_imap.ts";
import * as auth_auth_ldap_bind from "./auth/auth_ldap_bind.ts";
import * as auth_auth_vpopmaild from "./auth/auth_vpopmaild.ts";
import * as auth_authdeny from "./auth/authdeny.ts";
import * as badmailfrom from "./badmailfrom.ts";
import * as badmailfromto from "./badmailfromto.ts";
import * as badrcptto from "./badrcptto.ts";
import * as bogus_bounce from "./bogus_bounce.ts";
import * as connection_time from "./connection_time.ts";
import * as content_log from "./content_log.ts";
import * as count_unrecognized_commands from "./count_unrecognized_commands.ts";
import * as dkim from "./dkim.ts";
import * as dmarc from "./dmarc.ts";
import * as dns_whitelist_soft from "./dns_whitelist_soft.ts";
import * as dnsbl from "./dnsbl.ts";
import * as domainkeys from "./domainkeys.ts";
import * as dont_require_anglebrackets from "./dont_require_anglebrackets.ts";
import * as earlytalker from "./earlytalker.ts";
import * as fcrdns from "./fcrdns.ts";
import * as greylisting from "./greylisting.ts";
import * as headers from "./headers.ts";
import * as helo from "./helo.ts";
import * as help from "./help.ts";
import * as hosts_allow from "./hosts_allow.ts";
import * as http_config from "./http_config.ts";
import * as ident_geoip from "./ident/geoip.ts";
import * as ident_p0f from "./ident/p0f.ts";
import * as karma from "./karma.ts";
import * as limit from "./limit.ts";
import * as loadcheck from "./loadcheck.ts";
import * as logging_adaptive from "./logging/adaptive.ts";
import * as logging_apache from "./logging/apache.ts";
import * as logging_connection_id from "./logging/connection_id.ts";
import * as logging_devnull from "./logging/devnull.ts";
import * as logging_file from "./logging/file.ts";
import * as logging_json from "./logging/json.ts";
import * as logging_syslog from "./logging/syslog.ts";
import * as logging_transaction_id from "./logging/transaction_id.ts";
import * as logging_warn from "./logging/warn.ts";
import * as loop from "./loop.ts";
import * as milter from "./milter.ts";
import * as naughty from "./naughty.ts";
import * as noop_counter from "./noop_counter.ts";
import * as parse_addr_withhelo from "./parse_addr_withhelo.ts";
import * as qmail_deliverable from "./qmail_deliverable.ts";
import * as queue_discard from "./queue/discard.ts";
import * as queue_exim_bsmtp from "./queue/exim-bsmtp.ts";
import * as queue_lmtp from "./queue/lmtp.ts";
import * as queue_maildir from "./queue/maildir.ts";
import * as queue_postfix_queue from "./queue/postfix-queue.ts";
import * as queue_qmail_queue from "./queue/qmail-queue.ts";
import * as queue_smtp_forward from "./queue/smtp-forward.ts";
import * as quit_fortune from "./quit_fortune.ts";
import * as random_error from "./random_error.ts";
import * as rcpt_map from "./rcpt_map.ts";
import * as rcpt_ok from "./rcpt_ok.ts";
import * as rcpt_regexp from "./rcpt_regexp.ts";
import * as relay from "./relay.ts";
import * as resolvable_fromhost from "./resolvable_fromhost.ts";
import * as rhsbl from "./rhsbl.ts";
import * as rspamd from "./rspamd.ts";
import * as sender_permitted_from from "./sender_permitted_from.ts";
import * as spamassassin from "./spamassassin.ts";
import * as tls from "./tls.ts";
import * as uribl from "./uribl.ts";
import * as virus_clamav from "./virus/clamav.ts";
import * as virus_clamdscan from "./virus/clamdscan.ts";
import * as virus_klez_filter from "./virus/klez_filter.ts";
import * as whitelist from "./whitelist.ts";

/** Assigning each module here type-checks its hooks against the contract. */
export const BUILTINS: Readonly<Record<string, AnyPluginModule>> = {
  "arc": arc,
  "auth/auth_checkpassword": auth_auth_checkpassword,
  "auth/auth_dovecot": auth_auth_dovecot,
  "auth/auth_flat_file": auth_auth_flat_file,
  "auth/auth_imap": auth_auth_imap,
  "auth/auth_ldap_bind": auth_auth_ldap_bind,
  "auth/auth_vpopmaild": auth_auth_vpopmaild,
  "auth/authdeny": auth_authdeny,
  "badmailfrom": badmailfrom,
  "badmailfromto": badmailfromto,
  "badrcptto": badrcptto,
  "bogus_bounce": bogus_bounce,
  "connection_time": connection_time,
  "content_log": content_log,
  "count_unrecognized_commands": count_unrecognized_commands,
  "dkim": dkim,
  "dmarc": dmarc,
  "dns_whitelist_soft": dns_whitelist_soft,
  "dnsbl": dnsbl,
  "domainkeys": domainkeys,
  "dont_require_anglebrackets": dont_require_anglebrackets,
  "earlytalker": earlytalker,
  "fcrdns": fcrdns,
  "greylisting": greylisting,
  "headers": headers,
  "helo": helo,
  "help": help,
  "hosts_allow": hosts_allow,
  "http_config": http_config,
  "ident/geoip": ident_geoip,
  "ident/p0f": ident_p0f,
  "karma": karma,
  "limit": limit,
  "loadcheck": loadcheck,
  "logging/adaptive": logging_adaptive,
  "logging/apache": logging_apache,
  "logging/connection_id": logging_connection_id,
  "logging/devnull": logging_devnull,
  "logging/file": logging_file,
  "logging/json": logging_json,
  "logging/syslog": logging_syslog,
  "logging/transaction_id": logging_transaction_id,
  "logging/warn": logging_warn,
  "loop": loop,
  "milter": milter,
  "naughty": naughty,
  "noop_counter": noop_counter,
  "parse_addr_withhelo": parse_addr_withhelo,
  "qmail_deliverable": qmail_deliverable,
  "queue/discard": queue_discard,
  "queue/exim-bsmtp": queue_exim_bsmtp,
  "queue/lmtp": queue_lmtp,
  "queue/maildir": queue_maildir,
  "queue/postfix-queue": queue_postfix_queue,
  "queue/qmail-queue": queue_qmail_queue,
  "queue/smtp-forward": queue_smtp_forward,
  "quit_fortune": quit_fortune,
  "random_error": random_error,
  "rcpt_map": rcpt_map,
  "rcpt_ok": rcpt_ok,
  "rcpt_regexp": rcpt_regexp,
  "relay": relay,
  "resolvable_fromhost": resolvable_fromhost,
  "rhsbl": rhsbl,
  "rspamd": rspamd,
  "sender_permitted_from": sender_permitted_from,
  "spamassassin": spamassassin,
  "tls": tls,
  "uribl": uribl,
  "virus/clamav": virus_clamav,
  "virus/clamdscan": virus_clamdscan,
  "virus/klez_filter": virus_klez_filter,
  "whitelist": whitelist,
};
