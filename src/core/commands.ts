/**
 * The SMTP commands other than DATA and AUTH: each runs its hook chain and turns the outcome
 * into qpsmtpd's reply for that stage (reference §2.1).
 * @module
 */
import { Address } from "../api/address.ts";
import { VERSION } from "../api/version.ts";
import { DENY, DENY_DISCONNECT, DONE, LOGERROR, OK } from "../api/codes.ts";
import type { MailOptions } from "../api/esmtp.ts";
import type { Params } from "../api/hooks.ts";
import { parsePathArgument } from "../api/path_argument.ts";
import { parseParams } from "../smtp/command.ts";
import { cmdXclient, xclientKeyword } from "./xclient.ts";
import { advertisedMechanisms, cmdAuth } from "./auth.ts";
import { connectionControl } from "./connection.ts";
import { cmdBdat } from "./bdat.ts";
import { cmdData } from "./data.ts";
import { isReply, mailOptions, rcptDsn } from "./esmtp_params.ts";
import { finishes, refuse, refuseNow } from "./refusals.ts";
import { REPLIES } from "./replies.ts";
import type { SmtpSession } from "./smtp_session.ts";
import type { Outcome } from "./hook_runner.ts";
import { parseWith } from "./parse_hooks.ts";
import { freeSpace } from "./spool.ts";
import { transactionControl } from "./transaction.ts";

/** A command: its answer written when it returns undefined, else when the promise settles. */
export type CommandHandler = (s: SmtpSession, rest: string) => Promise<void> | undefined;

/** HELO and EHLO, without a promise when nothing asks for one (they come once a connection). */
function cmdHelo(s: SmtpSession, rest: string, verb: "helo" | "ehlo" = "helo"): Promise<void> | undefined {
  if (s.connection.hello) {
    s.send(REPLIES.alreadyGreeted);
    return undefined;
  }
  const parseHook = verb === "helo" ? "helo_parse" : "ehlo_parse";
  if (s.registry.has(parseHook)) return heloParsed(s, rest, verb, parseHook);
  return heloWith(s, verb, rest.split(/ +/).filter(Boolean));
}

async function heloParsed(s: SmtpSession, rest: string, verb: "helo" | "ehlo", parseHook: "helo_parse" | "ehlo_parse"): Promise<void> {
  const parsed = await parseWith(s, parseHook, verb, rest);
  if (!parsed) return;
  await heloWith(s, verb, parsed.length ? parsed : rest.split(/ +/).filter(Boolean));
}

function heloWith(s: SmtpSession, verb: "helo" | "ehlo", words: readonly string[]): Promise<void> | undefined {
  const [host, ...extra] = words;
  if (!host) {
    s.send(REPLIES.heloNeedsDomain(verb));
    return undefined;
  }
  // RFC 5321 4.1.4: a greeting also resets any transaction.
  const reset = s.resetTransactionNow();
  return reset ? reset.then(() => heloHooks(s, verb, host, extra)) : heloHooks(s, verb, host, extra);
}

function heloHooks(s: SmtpSession, verb: "helo" | "ehlo", host: string, extra: string[]): Promise<void> | undefined {
  const r = s.runHooksNow(verb, host, ...extra);
  return r instanceof Promise ? r.then((o) => heloAnswer(s, verb, host, o)) : heloAnswer(s, verb, host, r);
}

function heloAnswer(s: SmtpSession, verb: "helo" | "ehlo", host: string, r: Outcome): Promise<void> | undefined {
  const refused = refuseNow(s, r, REPLIES.heloRefusals);
  if (refused instanceof Promise) return refused.then((done) => done ? undefined : greet(s, verb, host));
  if (!refused) greet(s, verb, host);
  return undefined;
}

/** The answer to a greeting that no plugin refused. */
function greet(s: SmtpSession, verb: "helo" | "ehlo", host: string): void {
  const conn = s.connection;
  connectionControl.greeted(conn, verb, host);
  const hi = `${s.me} Hi ${conn.remote_info} [${conn.remote_ip}]`;
  if (verb === "helo") {
    s.send(REPLIES.heloOk(hi));
    return;
  }
  const lines = [hi, "PIPELINING", "8BITMIME"];
  if (s.limits.databytes > 0) lines.push(`SIZE ${s.limits.databytes}`);
  lines.push("ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "BINARYMIME", "DSN");
  lines.push(`LIMITS RCPTMAX=${s.limits.maxRcpt}${s.limits.maxMail > 0 ? ` MAILMAX=${s.limits.maxMail}` : ""}`);
  if (conn.tls) lines.push("REQUIRETLS");
  const xclient = xclientKeyword(s);
  if (xclient) lines.push(xclient);
  s.enhancedCodes = true;
  const caps = s.hasTransaction() ? s.transaction.notes("capabilities") : undefined;
  if (Array.isArray(caps)) lines.push(...caps.map(String));
  const mechs = advertisedMechanisms(s);
  s.authAdvertised = mechs.length > 0;
  if (mechs.length) lines.push(`AUTH ${mechs.join(" ")}`);
  s.send(REPLIES.ehloOk(lines));
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(latin1: string): string | undefined {
  try {
    return UTF8.decode(Buffer.from(latin1, "latin1"));
  } catch {
    return undefined;
  }
}

interface Envelope {
  readonly address: Address;
  readonly params: Params;
  /** The line had non-ASCII bytes: only then can the address hold UTF-8 (without it the parser takes ASCII only). */
  readonly utf8: boolean;
}

/** What no `*_parse` plugin gives: the default split. */
const NO_PARTS: readonly string[] = [];
const UTF8_PATH = { utf8: true } as const;
const ASCII_PATH = { utf8: false } as const;

/**
 * Parses `FROM:<path> params` or `TO:<path> params`, with the parse and pre hooks; without a
 * promise when neither is registered (it runs for every recipient).
 */
function parseEnvelope(s: SmtpSession, line: string, kind: "mail" | "rcpt"): Envelope | undefined | Promise<Envelope | undefined> {
  // The line arrives as bytes (latin1); an address with non-ASCII must be UTF-8 (RFC 6531).
  const utf8 = /[\x80-\xff]/.test(line);
  const rest = utf8 ? decodeUtf8(line) : line;
  if (rest === undefined) {
    s.send(REPLIES.badUtf8);
    return undefined;
  }
  // Constant names: a name made per command would be hashed afresh at each look-up.
  const parseHook = kind === "mail" ? "mail_parse" : "rcpt_parse";
  const preHook = kind === "mail" ? "mail_pre" : "rcpt_pre";
  if (s.registry.has(parseHook) || s.registry.has(preHook)) return parseEnvelopeWithHooks(s, rest, kind, utf8, parseHook, preHook);
  const split = splitEnvelope(s, rest, kind, NO_PARTS);
  return split && envelope(s, split.path, split.params, kind, utf8);
}

async function parseEnvelopeWithHooks(
  s: SmtpSession,
  rest: string,
  kind: "mail" | "rcpt",
  utf8: boolean,
  parseHook: "mail_parse" | "rcpt_parse",
  preHook: "mail_pre" | "rcpt_pre",
): Promise<Envelope | undefined> {
  const parsed = s.registry.has(parseHook) ? await parseWith(s, parseHook, kind, rest) : NO_PARTS;
  if (!parsed) return undefined;
  const split = splitEnvelope(s, rest, kind, parsed);
  if (!split) return undefined;
  let path = split.path;
  const pre = await s.runHooks(preHook, path, split.params);
  if (pre.code === OK && pre.msg[0]) path = pre.msg[0];
  return envelope(s, path, split.params, kind, utf8);
}

/** The path and parameters: a parse plugin's parts, or the default split; undefined after the error reply. */
function splitEnvelope(
  s: SmtpSession,
  rest: string,
  kind: "mail" | "rcpt",
  parsed: readonly string[],
): { path: string; params: Params } | undefined {
  let path: string;
  let words: readonly string[];
  if (parsed.length) {
    [path, ...words] = parsed as [string, ...string[]];
  } else {
    const arg = parsePathArgument(rest, kind === "mail" ? "from" : "to");
    if (!arg) {
      s.send(REPLIES.syntaxError);
      return undefined;
    }
    path = arg.path;
    words = arg.params;
  }
  const params = parseParams(words);
  if (typeof params === "string") {
    s.send(REPLIES.badParameters(params));
    return undefined;
  }
  return { path, params };
}

/** The envelope for `path`, or undefined after the error reply. */
function envelope(s: SmtpSession, path: string, params: Params, kind: "mail" | "rcpt", utf8: boolean): Envelope | undefined {
  const address = Address.parse(path, utf8 ? UTF8_PATH : ASCII_PATH);
  if (!address || (kind === "rcpt" && address.isNull())) {
    s.send(kind === "mail" ? REPLIES.badSender : REPLIES.badRecipient);
    return undefined;
  }
  return { address, params, utf8 };
}

/** MAIL, without a promise when nothing asks for one (as RCPT). */
function cmdMail(s: SmtpSession, rest: string): Promise<void> | undefined {
  if (!s.connection.hello) {
    s.send(REPLIES.helloFirst);
    return undefined;
  }
  // A MAIL inside an open transaction starts a new one (qmail behaviour).
  const reset = s.hasTransaction() && s.transaction.sender() ? s.resetTransactionNow() : undefined;
  return reset ? reset.then(() => mailFrom(s, rest)) : mailFrom(s, rest);
}

function mailFrom(s: SmtpSession, rest: string): Promise<void> | undefined {
  if (s.limits.maxMail > 0 && s.transactions >= s.limits.maxMail) {
    s.send(REPLIES.tooManyTransactions);
    return undefined;
  }
  const parsed = parseEnvelope(s, rest, "mail");
  return parsed instanceof Promise ? parsed.then((env) => mailFor(s, env)) : mailFor(s, parsed);
}

function mailFor(s: SmtpSession, env: Envelope | undefined): Promise<void> | undefined {
  if (!env) return undefined;
  const options = mailOptions(env.params, { databytes: s.limits.databytes, tls: s.connection.tls });
  if (isReply(options)) {
    s.send(options);
    return undefined;
  }
  if (env.utf8 && env.address.isUtf8() && !options.smtputf8) {
    s.send(REPLIES.utf8WithoutSmtputf8);
    return undefined;
  }
  // RFC 5321 4.5.3.1.10 / Postfix queue_minfree: refuse while the spool cannot take the message.
  const need = Math.max(s.limits.spoolMinFree, 1.5 * Math.max(s.limits.databytes, options.size ?? 0));
  const spool = s.spoolDir();
  if (freeSpace(spool) < need) {
    s.log(LOGERROR, `spool disk ${spool} has less than ${need} bytes free`);
    s.send(REPLIES.spoolFull);
    return undefined;
  }
  const from = env.address;
  const r = s.runHooksNow("mail", from, env.params);
  return r instanceof Promise ? r.then((o) => mailAnswer(s, from, options, o)) : mailAnswer(s, from, options, r);
}

function mailAnswer(s: SmtpSession, from: Address, options: MailOptions, r: Outcome): Promise<void> | undefined {
  // The refusal texts name the sender: made only for a refusal.
  const refused = finishes(r.code) ? refuseNow(s, r, REPLIES.mailRefusals(String(from))) : false;
  if (refused instanceof Promise) return refused.then((done) => done ? undefined : acceptSender(s, from, options));
  if (!refused) acceptSender(s, from, options);
  return undefined;
}

function acceptSender(s: SmtpSession, from: Address, options: MailOptions): void {
  s.transaction.sender(from);
  transactionControl.setMailOptions(s.transaction, options);
  s.transactions++;
  s.host.metrics.transactions.inc();
  s.send(REPLIES.senderOk(String(from)));
}

/**
 * RCPT, without a promise when nothing asks for one: it comes several times a message, and an
 * accepted recipient whose plugins all answered at once is answered at once.
 */
function cmdRcpt(s: SmtpSession, rest: string): Promise<void> | undefined {
  if (!s.hasTransaction() || !s.transaction.sender()) {
    s.send(REPLIES.mailFirst);
    return undefined;
  }
  if (s.transaction.recipients().length >= s.limits.maxRcpt) {
    s.send(REPLIES.tooManyRecipients);
    return undefined;
  }
  const parsed = parseEnvelope(s, rest, "rcpt");
  return parsed instanceof Promise ? parsed.then((env) => rcptFor(s, env)) : rcptFor(s, parsed);
}

function rcptFor(s: SmtpSession, env: Envelope | undefined): Promise<void> | undefined {
  if (!env) return undefined;
  const dsn = rcptDsn(env.params);
  if (isReply(dsn)) {
    s.send(dsn);
    return undefined;
  }
  if (env.utf8 && env.address.isUtf8() && !s.transaction.mail_options().smtputf8) {
    s.send(REPLIES.utf8WithoutSmtputf8);
    return undefined;
  }
  const to = env.address;
  to.dsn = dsn;
  const running = s.runHooksNow("rcpt", to, env.params);
  return running instanceof Promise ? running.then((r) => rcptAnswer(s, to, r)) : rcptAnswer(s, to, running);
}

function rcptAnswer(s: SmtpSession, to: Address, r: Outcome): Promise<void> | undefined {
  if (r.code === OK) {
    s.transaction.add_recipient(to);
    s.send(REPLIES.recipientOk(String(to)));
    return undefined;
  }
  return refuse(s, r, REPLIES.rcptRefusals).then((refused) => {
    if (!refused) s.send(REPLIES.noRcptPlugin);
  });
}

async function cmdRset(s: SmtpSession): Promise<void> {
  await s.resetTransaction();
  s.send(REPLIES.ok);
}

async function cmdNoop(s: SmtpSession, rest: string): Promise<void> {
  const r = await s.runHooks("noop", ...rest.split(/ +/).filter(Boolean));
  if (r.code === DENY || r.code === DENY_DISCONNECT) {
    s.send(REPLIES.noopDenied, r.msg);
    if (r.code === DENY_DISCONNECT) await s.disconnect();
  } else if (r.code !== DONE) s.send(REPLIES.ok);
}

async function cmdVrfy(s: SmtpSession): Promise<void> {
  const r = await s.runHooks("vrfy");
  if (r.code === OK) s.send(REPLIES.userOk, r.msg);
  else if (r.code === DENY) {
    s.send(REPLIES.vrfyDenied, r.msg);
    await s.resetTransaction();
  } else if (r.code !== DONE) s.send(REPLIES.cannotVrfy);
}

async function cmdHelp(s: SmtpSession, rest: string): Promise<void> {
  const r = await s.runHooks("help", ...rest.split(/ +/).filter(Boolean));
  if (r.code === DONE) return;
  if (r.code === DENY) {
    s.send(REPLIES.helpDenied, r.msg);
    return;
  }
  if (r.msg.length) {
    s.send(REPLIES.help(r.msg));
    return;
  }
  const first = s.config("smtpgreeting") === undefined ? [`This is qpsmtpd ${VERSION}`] : [];
  s.send(
    REPLIES.help([...first, "See https://github.com/smtpd/qpsmtpd/", "To report bugs or send comments, mail to <ask@develooper.com>."]),
  );
}

function cmdQuit(s: SmtpSession): Promise<void> {
  const r = s.runHooksNow("quit");
  return r instanceof Promise ? r.then((o) => quitAnswer(s, o)) : quitAnswer(s, r);
}

function quitAnswer(s: SmtpSession, r: Outcome): Promise<void> {
  if (r.code !== DONE) s.send(REPLIES.quit(s.me));
  return s.disconnect();
}

/** The command table; AUTH is only reachable after an EHLO that advertised it. */
export const COMMANDS: Readonly<Record<string, CommandHandler>> = Object.assign(Object.create(null), {
  helo: (s: SmtpSession, rest: string) => cmdHelo(s, rest, "helo"),
  ehlo: (s: SmtpSession, rest: string) => cmdHelo(s, rest, "ehlo"),
  mail: cmdMail,
  rcpt: cmdRcpt,
  data: cmdData,
  bdat: cmdBdat,
  rset: cmdRset,
  noop: cmdNoop,
  vrfy: cmdVrfy,
  help: cmdHelp,
  quit: cmdQuit,
  auth: cmdAuth,
  xclient: cmdXclient,
});
