/**
 * The SMTP commands other than DATA and AUTH: each runs its hook chain and turns the outcome
 * into qpsmtpd's reply for that stage (reference §2.1).
 * @module
 */
import { Address } from "../smtp/address.ts";
import { type Params, parseParams, parsePathArgument } from "../smtp/command.ts";
import { DENY, DENY_DISCONNECT, DONE, LOGERROR, OK } from "./codes.ts";
import { refuse, type Refusals } from "./refusals.ts";
import { freeSpace } from "./spool.ts";
import type { LineParser } from "./hooks.ts";
import type { Session } from "./session.ts";
import { cmdData } from "./data.ts";
import { advertisedMechanisms, cmdAuth } from "./auth.ts";

export type CommandHandler = (s: Session, rest: string) => Promise<void>;

async function cmdHelo(s: Session, rest: string, verb: "helo" | "ehlo" = "helo"): Promise<void> {
  const conn = s.connection;
  if (conn.hello) {
    s.respond(503, "but you already said HELO ...");
    return;
  }
  const parsed = await parseWith(s, `${verb}_parse`, verb, rest);
  if (!parsed) return;
  const [host, ...extra] = parsed.length ? parsed : rest.split(/ +/).filter(Boolean);
  if (!host) {
    s.respond(501, `${verb} requires domain/address - see RFC-2821 4.1.1.1`);
    return;
  }
  // RFC 5321 4.1.4: a greeting also resets any transaction.
  await s.reset_transaction();
  const r = await s.run_hooks(verb, host, ...extra);
  const denied: Refusals = { deny: [550, "Access denied"], denysoft: [450, "Temporarily denied"], denyDisconnect: [550, "Access denied"], denysoftDisconnect: [450, "Temporarily denied"] };
  if (await refuse(s, r, denied)) return;
  conn.hello = verb;
  conn.hello_host = host;
  const hi = `${s.me} Hi ${conn.remote_info} [${conn.remote_ip}]`;
  if (verb === "helo") {
    s.respond(250, `${hi}; I am so happy to meet you.`);
    return;
  }
  const lines = [hi, "PIPELINING", "8BITMIME"];
  if (s.limits.databytes > 0) lines.push(`SIZE ${s.limits.databytes}`);
  const caps = s.transaction.notes("capabilities");
  if (Array.isArray(caps)) lines.push(...caps.map(String));
  const mechs = advertisedMechanisms(s);
  s.authAdvertised = mechs.length > 0;
  if (mechs.length) lines.push(`AUTH ${mechs.join(" ")}`);
  s.respond(250, ...lines);
}

/**
 * Runs a `*_parse` hook: a plugin may return `[OK, parser]`, whose result replaces the default
 * split. Returns the parts, `[]` for "use the default", or undefined after a 501.
 */
async function parseWith(
  s: Session,
  hook: "helo_parse" | "ehlo_parse" | "mail_parse" | "rcpt_parse",
  verb: string,
  rest: string,
): Promise<string[] | undefined> {
  if (!s.registry.has(hook)) return [];
  const r = await s.run_hooks(hook, rest);
  if (typeof r.value !== "function") return [];
  const out = (r.value as LineParser)(verb, rest);
  if (out[0] !== OK) {
    s.respond(501, out[1] ?? "Syntax error in command");
    return undefined;
  }
  return out.slice(1).map(String);
}

interface Envelope {
  readonly address: Address;
  readonly params: Params;
}

/** Parses `FROM:<path> params` or `TO:<path> params`, with the parse and pre hooks. */
async function parseEnvelope(s: Session, rest: string, kind: "mail" | "rcpt"): Promise<Envelope | undefined> {
  const parsed = await parseWith(s, `${kind}_parse`, kind, rest);
  if (!parsed) return undefined;
  let path: string;
  let words: readonly string[];
  if (parsed.length) {
    [path, ...words] = parsed as [string, ...string[]];
  } else {
    const arg = parsePathArgument(rest, kind === "mail" ? "from" : "to");
    if (!arg) {
      s.respond(501, "Syntax error in command");
      return undefined;
    }
    path = arg.path;
    words = arg.params;
  }
  const params = parseParams(words);
  if (typeof params === "string") {
    s.respond(501, params);
    return undefined;
  }
  const pre = await s.run_hooks(`${kind}_pre`, path, params);
  if (pre.code === OK && pre.msg[0]) path = pre.msg[0];
  const bad = kind === "mail" ? "could not parse your mail from command" : "could not parse recipient";
  const address = /^<.*>$/s.test(path) ? Address.parse(path) : undefined;
  if (!address || (kind === "rcpt" && address.isNull())) {
    s.respond(501, bad);
    return undefined;
  }
  return { address, params };
}

/** Checks the ESMTP parameters the core knows; anything else was not advertised. */
function checkParams(s: Session, params: Params, kind: "mail" | "rcpt"): boolean {
  for (const [key, value] of Object.entries(params)) {
    if (kind === "mail" && key === "size") {
      if (value === undefined || !/^\d{1,20}$/.test(value)) {
        s.respond(501, "5.5.4 Syntax error in SIZE parameter");
        return false;
      }
      if (s.limits.databytes > 0 && Number(value) > s.limits.databytes) {
        s.respond(552, "5.3.4 Message size exceeds fixed maximum message size");
        return false;
      }
    } else if (kind === "mail" && key === "body") {
      if (!/^(7BIT|8BITMIME)$/i.test(value ?? "")) {
        s.respond(501, "5.5.4 Syntax error in BODY parameter");
        return false;
      }
    } else if (!(kind === "mail" && key === "auth")) {
      s.respond(555, `5.5.4 Unsupported parameter ${key.toUpperCase()}`);
      return false;
    }
  }
  return true;
}

async function cmdMail(s: Session, rest: string): Promise<void> {
  if (!s.connection.hello) {
    s.respond(503, "please say hello first ...");
    return;
  }
  // A MAIL inside an open transaction starts a new one (qmail behaviour).
  if (s.has_transaction() && s.transaction.sender()) await s.reset_transaction();
  const env = await parseEnvelope(s, rest, "mail");
  if (!env || !checkParams(s, env.params, "mail")) return;
  // RFC 5321 4.5.3.1.10 / Postfix queue_minfree: refuse while the spool cannot take the message.
  const need = Math.max(s.limits.spoolMinFree, 1.5 * Math.max(s.limits.databytes, Number(env.params["size"] ?? 0)));
  if (freeSpace(s.spool_dir()) < need) {
    s.log(LOGERROR, `spool disk ${s.spool_dir()} has less than ${need} bytes free`);
    s.respond(452, "4.3.1 Insufficient system storage");
    return;
  }
  const from = env.address;
  const r = await s.run_hooks("mail", from, env.params);
  const denied = `${from}, denied`;
  const later = `${from}, temporarily denied`;
  if (await refuse(s, r, { deny: [550, denied], denysoft: [450, later], denyDisconnect: [550, denied], denysoftDisconnect: [421, later] })) return;
  s.transaction.sender(from);
  s.respond(250, `${from}, sender OK - how exciting to get mail from you!`);
}

async function cmdRcpt(s: Session, rest: string): Promise<void> {
  if (!s.has_transaction() || !s.transaction.sender()) {
    s.respond(503, "Use MAIL before RCPT");
    return;
  }
  if (s.transaction.recipients().length >= s.limits.maxRcpt) {
    s.respond(452, "4.5.3 Too many recipients");
    return;
  }
  const env = await parseEnvelope(s, rest, "rcpt");
  if (!env || !checkParams(s, env.params, "rcpt")) return;
  const to = env.address;
  const r = await s.run_hooks("rcpt", to, env.params);
  if (r.code === OK) {
    s.transaction.add_recipient(to);
    s.respond(250, `${to}, recipient ok`);
    return;
  }
  const denied = "relaying denied";
  if (await refuse(s, r, { deny: [550, denied], denysoft: [450, denied], denyDisconnect: [550, "delivery denied"], denysoftDisconnect: [421, denied] })) return;
  s.respond(450, "No plugin decided if relaying is allowed");
}

async function cmdRset(s: Session): Promise<void> {
  await s.reset_transaction();
  s.respond(250, "OK");
}

async function cmdNoop(s: Session, rest: string): Promise<void> {
  const r = await s.run_hooks("noop", ...rest.split(/ +/).filter(Boolean));
  if (r.code === DENY || r.code === DENY_DISCONNECT) {
    s.reply(500, r, "Stop wasting my time.");
    if (r.code === DENY_DISCONNECT) await s.disconnect();
  } else if (r.code !== DONE) s.respond(250, "OK");
}

async function cmdVrfy(s: Session): Promise<void> {
  const r = await s.run_hooks("vrfy");
  if (r.code === OK) s.reply(250, r, "User OK");
  else if (r.code === DENY) {
    s.reply(554, r, "Access Denied");
    await s.reset_transaction();
  } else if (r.code !== DONE) s.respond(252, "Just try sending a mail and we'll see how it turns out ...");
}

async function cmdHelp(s: Session, rest: string): Promise<void> {
  const r = await s.run_hooks("help", ...rest.split(/ +/).filter(Boolean));
  if (r.code === DONE) return;
  if (r.code === DENY) {
    s.reply(500, r, "Syntax error, command not recognized");
    return;
  }
  if (r.msg.length) {
    s.respond(214, ...r.msg);
    return;
  }
  const first = s.config("smtpgreeting") === undefined ? [`This is qpsmtpd ${s.version}`] : [];
  s.respond(
    214,
    ...first,
    "See https://github.com/smtpd/qpsmtpd/",
    "To report bugs or send comments, mail to <ask@develooper.com>.",
  );
}

async function cmdQuit(s: Session): Promise<void> {
  const r = await s.run_hooks("quit");
  if (r.code !== DONE) s.respond(221, `${s.me} closing connection. Have a wonderful day.`);
  await s.disconnect();
}

/** The command table; AUTH is only reachable after an EHLO that advertised it. */
export const COMMANDS: Readonly<Record<string, CommandHandler>> = Object.assign(Object.create(null), {
  helo: (s: Session, rest: string) => cmdHelo(s, rest, "helo"),
  ehlo: (s: Session, rest: string) => cmdHelo(s, rest, "ehlo"),
  mail: cmdMail,
  rcpt: cmdRcpt,
  data: cmdData,
  rset: cmdRset,
  noop: cmdNoop,
  vrfy: cmdVrfy,
  help: cmdHelp,
  quit: cmdQuit,
  auth: cmdAuth,
});
