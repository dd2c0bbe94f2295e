/**
 * auth/auth_ldap_bind: checks AUTH PLAIN and LOGIN against an LDAP directory, as qpsmtpd's
 * auth_ldap_bind: it searches for the user's entry, then binds as that entry with the password
 * the client gave. The directory decides; no password is read or compared here.
 *
 * Hooks: auth-plain, auth-login. Notes: none.
 * Config file: `ldap`, lines of `key value` (qpsmtpd's); the plugin's arguments, key/value
 * pairs, override it; an unknown key in either stops start-up. Keys, with their defaults:
 * - `ldap_host` (127.0.0.1), `ldap_port` (389; 636 with `ldap_tls ldaps`);
 * - `ldap_base`: where to search (required: start-up fails without it);
 * - `ldap_bind_dn`, `ldap_bind_pwd`: who searches (anonymous when not set);
 * - `ldap_auth_filter_attr` (uid): the attribute that holds the user name;
 * - `ldap_timeout` (5): seconds for connecting and for each operation; keep it below
 *   `plugin_timeout` (30): a call cut off there counts as declined, which ends in 535;
 * - `ldap_tls` (`none`, `ldaps` or `starttls`), `ldap_ca` (PEM CAs to trust besides the system's,
 *   relative to the config directory), `ldap_tls_verify` (1; 0 turns certificate checking off);
 * - `ldap_user` (`local`): what is looked up, `local` = the lower-cased local part of the user
 *   name (qpsmtpd's: `alice@example.org` is `uid=alice`), `full` = the whole lower-cased name
 *   (for `ldap_auth_filter_attr mail`).
 * The search is `(ATTR=VALUE)` under `ldap_base`, scope sub, VALUE escaped per RFC 4515 (`*`,
 * `(`, `)`, `\`, NUL and control characters as `\xx`), so a user name cannot widen the filter.
 * The bind is a separate connection as the entry's DN.
 * Replies: OK (235) when the bind succeeds; DENY (535 5.7.8) when the directory refuses the
 * password (invalidCredentials), when two entries match (ambiguous), or for an empty password
 * (an LDAP simple bind without a password is an anonymous bind and would succeed), a NUL, or
 * bytes that were not UTF-8 (the core hands them on as U+FFFD, not as sent); DECLINED (the next
 * auth plugin, else 535) when no entry matches; DENYSOFT (454 4.7.0) when the directory cannot
 * answer: down, refusing, silent past `ldap_timeout`, a failed TLS handshake or certificate, the
 * service account refused, or any other LDAP error. Passwords are never logged.
 * Failure policy: closed. OK only when the directory said yes; when it cannot answer, 454 (the
 * client retries later), never 235 and never 535.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { isAbsolute, join } from "node:path";
import * as tls from "node:tls";
import { Client, InvalidCredentialsError, SizeLimitExceededError } from "ldapts";
import {
  type Check,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  OK,
  parsePluginArgs,
  type Result,
} from "qpsmtpd";

interface Data {
  url: string;
  base: string;
  bindDn: string | undefined;
  bindPwd: string | undefined;
  attr: string;
  fullName: boolean;
  starttls: boolean;
  tlsOptions: tls.ConnectionOptions;
  timeoutMs: number;
}

const KEYS = [
  "ldap_host",
  "ldap_port",
  "ldap_base",
  "ldap_bind_dn",
  "ldap_bind_pwd",
  "ldap_auth_filter_attr",
  "ldap_timeout",
  "ldap_tls",
  "ldap_ca",
  "ldap_tls_verify",
  "ldap_user",
] as const;

export const init: Init<Data> = function (server, ...args) {
  const conf: Record<string, string> = {};
  for (const line of server.config_all("ldap")) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m) conf[m[1]!] = m[2]!;
  }
  const known = new Set<string>(KEYS);
  for (const k of Object.keys(conf)) if (!known.has(k)) throw new Error(`auth/auth_ldap_bind: unknown setting "${k}" in config/ldap`);
  // The arguments override the file's lines.
  const given = parsePluginArgs("auth/auth_ldap_bind", args, { values: KEYS }).values;
  for (const k of KEYS) if (given[k] !== undefined) conf[k] = given[k];
  const base = conf["ldap_base"];
  if (!base) throw new Error("auth/auth_ldap_bind: ldap_base is required (an argument or a line of config/ldap)");
  const host = conf["ldap_host"] ?? "127.0.0.1";
  if (!/^[\w.-]+$/.test(host) && net.isIPv6(host) === false) throw new Error(`auth/auth_ldap_bind: bad ldap_host "${host}"`);
  const mode = conf["ldap_tls"] ?? "none";
  if (!["none", "ldaps", "starttls"].includes(mode)) {
    throw new Error(`auth/auth_ldap_bind: ldap_tls is none, ldaps or starttls, not "${mode}"`);
  }
  const port = conf["ldap_port"] ?? (mode === "ldaps" ? "636" : "389");
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`auth/auth_ldap_bind: bad ldap_port "${port}"`);
  const attr = conf["ldap_auth_filter_attr"] ?? "uid";
  if (!/^[A-Za-z][\w-]*$/.test(attr)) throw new Error(`auth/auth_ldap_bind: bad ldap_auth_filter_attr "${attr}"`);
  const seconds = conf["ldap_timeout"] ?? "5";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`auth/auth_ldap_bind: bad ldap_timeout "${seconds}"`);
  const user = conf["ldap_user"] ?? "local";
  if (user !== "local" && user !== "full") throw new Error(`auth/auth_ldap_bind: ldap_user is local or full, not "${user}"`);
  if ((conf["ldap_bind_dn"] === undefined) !== (conf["ldap_bind_pwd"] === undefined)) {
    throw new Error("auth/auth_ldap_bind: ldap_bind_dn and ldap_bind_pwd go together");
  }
  const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: conf["ldap_tls_verify"] !== "0" };
  if (net.isIP(host) === 0) tlsOptions.servername = host;
  const ca = conf["ldap_ca"];
  if (ca !== undefined) {
    const path = isAbsolute(ca) ? ca : server.config_path(ca) ?? join(server.config_dir, ca);
    tlsOptions.ca = [...tls.rootCertificates, fs.readFileSync(path, "utf8")];
  }
  const hostPart = net.isIPv6(host) ? `[${host}]` : host;
  this.data.url = `${mode === "ldaps" ? "ldaps" : "ldap"}://${hostPart}:${port}`;
  this.data.base = base;
  this.data.bindDn = conf["ldap_bind_dn"];
  this.data.bindPwd = conf["ldap_bind_pwd"];
  this.data.attr = attr;
  this.data.fullName = user === "full";
  this.data.starttls = mode === "starttls";
  this.data.tlsOptions = tlsOptions;
  this.data.timeoutMs = Number(seconds) * 1000;
};

/**
 * An assertion value for a search filter, RFC 4515 §3: `*`, `(`, `)`, `\` and NUL must be
 * written `\xx`; control characters are too, for the logs' sake. Other UTF-8 stays as it is.
 */
export function escapeFilterValue(value: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what is escaped
  return value.replace(/[*()\\\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** A connected client: TLS set up as configured, and torn down when the call's signal aborts. */
async function connect(d: Data, signal: AbortSignal): Promise<Client> {
  const client = new Client({
    url: d.url,
    timeout: d.timeoutMs,
    connectTimeout: d.timeoutMs,
    // ldapts speaks TLS from the start whenever tlsOptions are given: only for ldaps://.
    ...(d.url.startsWith("ldaps:") ? { tlsOptions: d.tlsOptions } : {}),
    strictDN: false, // the DN comes from the directory itself; pass it back untouched
  });
  signal.addEventListener("abort", () => void client.unbind().catch(() => undefined), { once: true });
  if (d.starttls) await client.startTLS(d.tlsOptions);
  return client;
}

/** The DNs of the entries whose `attr` is `name`, at most 2 (more is ambiguous anyway). */
async function findUser(d: Data, signal: AbortSignal, name: string): Promise<string[]> {
  const client = await connect(d, signal);
  try {
    if (d.bindDn !== undefined) {
      try {
        await client.bind(d.bindDn, d.bindPwd);
      } catch (e) {
        if (e instanceof InvalidCredentialsError) throw new Error(`the directory refused ldap_bind_dn ${d.bindDn}`);
        throw e;
      }
    }
    const { searchEntries } = await client.search(d.base, {
      scope: "sub",
      filter: `(${d.attr}=${escapeFilterValue(name)})`,
      attributes: ["1.1"],
      sizeLimit: 2,
      timeLimit: Math.ceil(d.timeoutMs / 1000),
    });
    return searchEntries.map((e) => e.dn);
  } catch (e) {
    if (e instanceof SizeLimitExceededError) return ["(more)", "(than one)"];
    throw e;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** Binds as `dn` with `password`: true when the directory takes it, false for invalidCredentials. */
async function bindAs(d: Data, signal: AbortSignal, dn: string, password: string): Promise<boolean> {
  const client = await connect(d, signal);
  try {
    await client.bind(dn, password);
    return true;
  } catch (e) {
    if (e instanceof InvalidCredentialsError) return false;
    throw e;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** Why a password cannot be checked faithfully, or undefined. */
function unusable(user: string, pass: string): string | undefined {
  if (pass === "") return "an empty password (an anonymous bind)";
  if (user.includes("\0") || pass.includes("\0")) return "a NUL byte";
  if (user.includes("\uFFFD") || pass.includes("\uFFFD")) return "bytes that are not UTF-8";
  return undefined;
}

export const hook_auth_plain: Hooks<Data>["auth-plain"] = async function (_txn, _mechanism, user, passClear): Promise<Result> {
  if (passClear === undefined) return DECLINED;
  const bad = unusable(user, passClear);
  if (bad) {
    this.log(LOGWARN, `refusing ${user}: ${bad}`);
    return DENY;
  }
  const d = this.data;
  const name = d.fullName ? user.toLowerCase() : user.toLowerCase().split("@")[0]!;
  try {
    const dns = await findUser(d, this.signal, name);
    if (dns.length === 0) {
      this.log(LOGINFO, `no entry with ${d.attr}=${escapeFilterValue(name)} under ${d.base}`);
      return DECLINED;
    }
    if (dns.length > 1) {
      this.log(LOGWARN, `more than one entry with ${d.attr}=${escapeFilterValue(name)} under ${d.base}: refusing ${user}`);
      return DENY;
    }
    if (await bindAs(d, this.signal, dns[0]!, passClear)) {
      this.log(LOGINFO, `${user} bound as ${dns[0]}`);
      return OK;
    }
    this.log(LOGINFO, `wrong password for ${user} (${dns[0]})`);
    return DENY;
  } catch (e) {
    return unavailable(this, (e as Error).message);
  }
};
export const hook_auth_login = hook_auth_plain;

function unavailable(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `the directory at ${p.data.url} cannot answer: ${why}`);
  return DENYSOFT; // the core answers 454 4.7.0
}

/** `qpsmtpd check`: the directory answers (as ldap_bind_dn, when set) a search of ldap_base. */
export const check: Check<Data> = async function () {
  const d = { ...this.data, timeoutMs: Math.min(this.data.timeoutMs, 10_000) };
  let client: Client | undefined;
  try {
    client = await connect(d, this.signal);
    if (d.bindDn !== undefined) await client.bind(d.bindDn, d.bindPwd);
    await client.search(d.base, { scope: "base", attributes: ["1.1"], sizeLimit: 1 });
    return [];
  } catch (e) {
    return [`the directory at ${d.url} cannot be searched at ${d.base}: ${(e as Error).message}`];
  } finally {
    await client?.unbind().catch(() => undefined);
  }
};
