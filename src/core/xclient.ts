/**
 * XCLIENT (Postfix's XCLIENT_README): a trusted proxy in front of the server (nginx's mail
 * proxy, a content filter) tells who its client really is. Only hosts listed in `xclient_hosts`
 * (addresses, CIDRs or prefixes, as `relayclients`) may use it, and only outside a transaction;
 * it is advertised only to them. On success the session starts again as a connection from the
 * reported client: the connect hooks run and greet it, and it must EHLO again.
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";
import { LOGINFO } from "../api/codes.ts";
import { xtextDecode } from "../api/esmtp.ts";
import { matchesClientEntry } from "../api/ip.ts";
import { connectionControl, type Endpoints } from "./connection.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";

/** What is advertised; REVERSE_NAME (newer Postfix, swaks) is also taken, and only noted. */
const ATTRIBUTES = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT"] as const;
const ACCEPTED = [...ATTRIBUTES, "REVERSE_NAME"] as const;
type Attribute = (typeof ACCEPTED)[number];

/** Decided once, for the address the connection came from: a restart does not change it. */
const allowed = new WeakMap<SmtpSession, boolean>();

function isAllowed(s: SmtpSession): boolean {
  let ok = allowed.get(s);
  if (ok === undefined) {
    const ip = s.connection.remote_ip;
    ok = s.configAll("xclient_hosts").some((e) => matchesClientEntry(e, ip));
    allowed.set(s, ok);
  }
  return ok;
}

/** The EHLO line for a client that may use XCLIENT. */
export function xclientKeyword(s: SmtpSession): string | undefined {
  return isAllowed(s) ? `XCLIENT ${ATTRIBUTES.join(" ")}` : undefined;
}

/** `[UNAVAILABLE]` and `[TEMPUNAVAIL]`: the proxy does not know. */
function unknown(v: string): boolean {
  return v === "[UNAVAILABLE]" || v === "[TEMPUNAVAIL]";
}

function address(v: string): string | undefined {
  const a = /^IPV6:/i.test(v) ? v.slice(5) : v;
  return (/^IPV6:/i.test(v) ? isIPv6(a) : isIPv4(a)) ? a.toLowerCase() : undefined;
}

function port(v: string): number | undefined {
  return /^\d{1,5}$/.test(v) && Number(v) < 65536 ? Number(v) : undefined;
}

export async function cmdXclient(s: SmtpSession, rest: string): Promise<void> {
  if (!isAllowed(s)) {
    s.send(REPLIES.xclientDenied);
    return;
  }
  if (s.hasTransaction() && s.transaction.sender()) {
    s.send(REPLIES.xclientInTransaction);
    return;
  }
  const words = rest.split(" ").filter(Boolean);
  if (words.length === 0) {
    s.send(REPLIES.xclientSyntax);
    return;
  }
  const got = new Map<Attribute, string>();
  for (const w of words) {
    const eq = w.indexOf("=");
    const name = w.slice(0, eq).toUpperCase() as Attribute;
    const value = eq > 0 ? xtextDecode(w.slice(eq + 1)) : undefined;
    if (!ACCEPTED.includes(name)) {
      s.send(REPLIES.xclientBadName(w.slice(0, Math.max(0, eq)) || w));
      return;
    }
    if (value === undefined || !checks[name](value)) {
      s.send(REPLIES.xclientBadValue(name));
      return;
    }
    got.set(name, value);
  }
  const c = s.connection;
  const known = (n: Attribute): string | undefined => {
    const v = got.get(n);
    return v === undefined || unknown(v) ? undefined : v;
  };
  const endpoints: Endpoints = {
    remote_ip: got.has("ADDR") ? (known("ADDR") ? address(known("ADDR")!)! : "0.0.0.0") : c.remote_ip,
    remote_port: got.has("PORT") ? port(known("PORT") ?? "0") ?? 0 : c.remote_port,
    local_ip: known("DESTADDR") ? address(known("DESTADDR")!)! : c.local_ip,
    local_port: known("DESTPORT") ? port(known("DESTPORT")!)! : c.local_port,
  };
  s.log(LOGINFO, `XCLIENT ${[...got].map(([k, v]) => `${k}=${k === "LOGIN" ? "(set)" : v}`).join(" ")}`);
  const name = got.has("NAME") ? known("NAME") ?? "Unknown" : c.remote_host;
  const helo = known("HELO");
  const login = known("LOGIN");
  await s.restartAs(endpoints, (conn) => {
    conn.remote_host = name;
    if (helo) connectionControl.reportedHelo(conn, helo);
    conn.notes("xclient", Object.fromEntries(got));
    if (login) {
      s.authUser = login;
      s.authMechanism = "XCLIENT";
      conn.relay_client(true);
    }
  });
}

const checks: Record<Attribute, (v: string) => boolean> = {
  NAME: (v) => unknown(v) || /^[A-Za-z0-9.-]{1,255}$/.test(v),
  REVERSE_NAME: (v) => unknown(v) || /^[A-Za-z0-9.-]{1,255}$/.test(v),
  ADDR: (v) => unknown(v) || address(v) !== undefined,
  PORT: (v) => unknown(v) || port(v) !== undefined,
  PROTO: (v) => /^E?SMTP$/i.test(v),
  HELO: (v) => unknown(v) || /^[\x21-\x7e]{1,255}$/.test(v),
  LOGIN: (v) => unknown(v) || /^[\x21-\x7e]{1,255}$/.test(v),
  DESTADDR: (v) => unknown(v) || address(v) !== undefined,
  DESTPORT: (v) => unknown(v) || port(v) !== undefined,
};
