/**
 * Every reply the engine writes, by name, with its RFC 3463 enhanced status code.
 *
 * Texts that come from qpsmtpd (`qpsmtpd: true`) are written as qpsmtpd writes them, without the
 * enhanced code, unless the session speaks ENHANCEDSTATUSCODES; the replies qpsmtpd does not
 * have always carry their code. A plugin's text replaces a reply's text and keeps its code.
 * @module
 */

export interface Reply {
  readonly code: number;
  /** RFC 3463 `class.subject.detail`; empty for replies that never carry one (220, 334, 354, EHLO). */
  readonly status: string;
  readonly lines: readonly string[];
  /** qpsmtpd's own text: its status is shown only with ENHANCEDSTATUSCODES on. */
  readonly qpsmtpd: boolean;
}

function qp(code: number, status: string, ...lines: string[]): Reply {
  return { code, status, lines, qpsmtpd: true };
}

function ours(code: number, status: string, ...lines: string[]): Reply {
  return { code, status, lines, qpsmtpd: false };
}

/** A refusal stage's answers, one per refusing return code. */
export interface Refusals {
  readonly deny: Reply;
  readonly denysoft: Reply;
  readonly denyDisconnect: Reply;
  readonly denysoftDisconnect: Reply;
  /** Reset the transaction after a refusal. */
  readonly reset?: boolean;
}

export const REPLIES = {
  // ---- connection ---------------------------------------------------------------------
  greeting: (text: string) => qp(220, "", text),
  preConnectionDenied: qp(550, "5.7.1", "Sorry, service not available for you"),
  preConnectionDeferred: qp(451, "4.7.1", "Sorry, try again later"),
  connectDenied: qp(550, "5.7.1", "Connection from you denied, bye bye."),
  connectDeferred: qp(450, "4.7.1", "Connection from you temporarily denied, bye bye."),
  tooManyConnections: ours(421, "4.3.2", "Too many connections, try again later"),
  tooManyFromIp: ours(421, "4.7.0", "Too many connections from your address, try again later"),
  shuttingDown: (me: string) => ours(421, "4.3.2", `${me} Service shutting down, closing connection`),
  commandTimeout: ours(421, "4.4.2", "Connection timed out, closing"),
  tooManyErrors: ours(421, "4.7.0", "Too many errors, closing connection"),
  internalError: ours(451, "4.3.0", "Internal error - try again later"),
  goAheadTls: qp(220, "2.0.0", "Go ahead with TLS"),
  commandFailed: (verb: string) => qp(451, "4.3.0", `Internal error - try again later - command '${verb}' failed unexpectedly`),
  quit: (me: string) => qp(221, "2.0.0", `${me} closing connection. Have a wonderful day.`),

  // ---- framing ------------------------------------------------------------------------
  bareLf: ours(500, "5.5.2", "Error: bare <LF> received; lines must end in CRLF"),
  lineTooLong: ours(500, "5.5.2", "Error: line too long"),
  tlsOnPlainPort: ours(500, "5.5.2", "Error: TLS handshake on a plaintext port; use STARTTLS"),
  nulInCommand: ours(500, "5.5.2", "Error: NUL character in command"),
  bareCrInCommand: ours(501, "5.5.2", "Syntax error: bare <CR> in command"),
  notSmtp: ours(554, "5.5.1", "Error: not an SMTP command, closing connection"),
  unrecognized: qp(500, "5.5.1", "Unrecognized command"),
  unrecognizedDisconnect: qp(521, "5.5.1", "Unrecognized command"),

  // ---- HELO / EHLO --------------------------------------------------------------------
  alreadyGreeted: qp(503, "5.5.1", "but you already said HELO ..."),
  heloNeedsDomain: (verb: string) => qp(501, "5.5.4", `${verb} requires domain/address - see RFC-2821 4.1.1.1`),
  heloOk: (hi: string) => qp(250, "", `${hi}; I am so happy to meet you.`),
  ehloOk: (lines: readonly string[]) => qp(250, "", ...lines),
  heloRefusals: {
    deny: qp(550, "5.7.1", "Access denied"),
    denysoft: qp(450, "4.7.1", "Temporarily denied"),
    denyDisconnect: qp(550, "5.7.1", "Access denied"),
    denysoftDisconnect: qp(450, "4.7.1", "Temporarily denied"),
  } satisfies Refusals,

  // ---- MAIL / RCPT --------------------------------------------------------------------
  syntaxError: qp(501, "5.5.2", "Syntax error in command"),
  parserRefused: (text: string) => qp(501, "5.5.2", text),
  badParameters: (text: string) => qp(501, "5.5.4", text),
  badParameter: (name: string) => ours(501, "5.5.4", `Bad ${name} parameter syntax`),
  sizeExceeded: ours(552, "5.3.4", "Message size exceeds fixed maximum message size"),
  unsupportedParameter: (key: string) => ours(555, "5.5.4", `Unsupported parameter ${key.toUpperCase()}`),
  requireTlsWithoutTls: ours(530, "5.7.10", "REQUIRETLS needs an encrypted session; use STARTTLS"),
  utf8WithoutSmtputf8: ours(553, "5.6.7", "Must declare SMTPUTF8 to send a Unicode address"),
  badUtf8: ours(501, "5.5.2", "Syntax error: the command is not valid UTF-8"),
  tooManyTransactions: ours(452, "4.5.3", "Too many messages in one session; send the rest in a new one"),
  helloFirst: qp(503, "5.5.1", "please say hello first ..."),
  spoolFull: ours(452, "4.3.1", "Insufficient system storage"),
  badSender: qp(501, "5.1.7", "could not parse your mail from command"),
  senderOk: (from: string) => qp(250, "2.1.0", `${from}, sender OK - how exciting to get mail from you!`),
  mailRefusals: (from: string): Refusals => ({
    deny: qp(550, "5.7.1", `${from}, denied`),
    denysoft: qp(450, "4.7.1", `${from}, temporarily denied`),
    denyDisconnect: qp(550, "5.7.1", `${from}, denied`),
    denysoftDisconnect: qp(421, "4.7.1", `${from}, temporarily denied`),
  }),
  mailFirst: qp(503, "5.5.1", "Use MAIL before RCPT"),
  tooManyRecipients: ours(452, "4.5.3", "Too many recipients"),
  badRecipient: qp(501, "5.1.3", "could not parse recipient"),
  recipientOk: (to: string) => qp(250, "2.1.5", `${to}, recipient ok`),
  rcptRefusals: {
    deny: qp(550, "5.7.1", "relaying denied"),
    denysoft: qp(450, "4.7.1", "relaying denied"),
    denyDisconnect: qp(550, "5.7.1", "delivery denied"),
    denysoftDisconnect: qp(421, "4.7.1", "relaying denied"),
  } satisfies Refusals,
  noRcptPlugin: qp(450, "4.7.1", "No plugin decided if relaying is allowed"),

  // ---- DATA ---------------------------------------------------------------------------
  dataRefusals: {
    deny: qp(554, "5.7.1", "Message denied"),
    denysoft: qp(451, "4.7.1", "Message denied temporarily"),
    denyDisconnect: qp(554, "5.7.1", "Message denied"),
    denysoftDisconnect: qp(451, "4.7.1", "Message denied temporarily"),
    reset: true,
  } satisfies Refusals,
  senderFirst: qp(503, "5.5.1", "MAIL first"),
  recipientFirst: qp(503, "5.5.1", "RCPT first"),
  pipeliningViolation: ours(554, "5.5.0", "Error: SMTP protocol synchronization"),
  dataAfterBdat: ours(503, "5.5.1", "Error: DATA is not allowed in a BDAT transaction"),
  binaryNeedsBdat: ours(503, "5.5.1", "Error: BODY=BINARYMIME needs BDAT, not DATA"),
  badBdat: ours(521, "5.5.4", "Syntax: BDAT count [LAST]; closing: the data that follows cannot be framed"),
  bdatTooBig: ours(552, "5.3.4", "Message size exceeds fixed maximum message size"),
  bdatChunkOk: (bytes: number) => ours(250, "2.0.0", `${bytes} bytes received`),
  bdatAfterError: ours(503, "5.5.1", "Error: this BDAT transaction already failed; send RSET"),
  goAhead: qp(354, "", "go ahead"),
  bareNewlineInData: ours(550, "5.5.2", "Error: bare <CR> or <LF> in message; lines must end in CRLF"),
  nulInData: ours(554, "5.6.0", "Error: NUL character in message"),
  messageTooBig: qp(552, "5.3.4", "Message too big!"),
  headerTooBig: ours(552, "5.3.4", "Message header too large"),
  spoolWriteFailed: ours(451, "4.3.0", "Error writing the message; try again later"),
  incompleteData: qp(451, "4.4.2", "Incomplete DATA"),
  dataTooSlow: ours(421, "4.4.2", "DATA too slow, closing connection"),
  headersEndDenied: qp(554, "5.7.1", "Message denied"),
  headersEndDeferred: qp(421, "4.7.1", "Message denied temporarily"),
  dataPostRefusals: {
    deny: qp(552, "5.7.1", "Message denied"),
    denysoft: qp(452, "4.7.1", "Message denied temporarily"),
    denyDisconnect: qp(552, "5.7.1", "Message denied"),
    denysoftDisconnect: qp(452, "4.7.1", "Message denied temporarily"),
    reset: true,
  } satisfies Refusals,
  queued: qp(250, "2.0.0", "Queued"),
  queueDenied: qp(552, "5.7.1", "Message denied"),
  queueDeferred: qp(452, "4.3.0", "Message denied temporarily"),
  queueDeclined: qp(451, "4.3.0", "Queuing declined or disabled; try again later"),

  // ---- XCLIENT -------------------------------------------------------------------------
  xclientDenied: ours(550, "5.7.0", "Error: insufficient authorization"),
  xclientInTransaction: ours(503, "5.5.1", "Error: MAIL transaction in progress"),
  xclientSyntax: ours(501, "5.5.4", "Syntax: XCLIENT attribute=value..."),
  xclientBadName: (name: string) => ours(501, "5.5.4", `Bad XCLIENT attribute name: ${name.slice(0, 40)}`),
  xclientBadValue: (name: string) => ours(501, "5.5.4", `Bad XCLIENT ${name} syntax`),

  // ---- RSET, NOOP, VRFY, HELP ------------------------------------------------------------
  ok: qp(250, "2.0.0", "OK"),
  noopDenied: qp(500, "5.5.1", "Stop wasting my time."),
  userOk: qp(250, "2.1.5", "User OK"),
  vrfyDenied: qp(554, "5.7.1", "Access Denied"),
  cannotVrfy: qp(252, "2.0.0", "Just try sending a mail and we'll see how it turns out ..."),
  helpDenied: qp(500, "5.5.1", "Syntax error, command not recognized"),
  help: (lines: readonly string[]) => qp(214, "2.0.0", ...lines),

  // ---- AUTH ---------------------------------------------------------------------------
  alreadyAuthenticated: qp(503, "5.5.1", "but you already said AUTH ..."),
  tlsBeforeAuth: qp(503, "5.7.0", "SSL/TLS required before AUTH"),
  authInTransaction: ours(503, "5.5.1", "AUTH not permitted during a mail transaction"),
  unknownMechanism: (mech: string) => qp(504, "5.5.4", `Unimplemented authentication mechanism: ${mech}`),
  authChallenge: (text: string) => qp(334, "", text),
  authCanceled: qp(501, "5.0.0", "Authentication canceled"),
  authUndecodable: ours(501, "5.5.2", "Cannot decode response"),
  authInvalid: qp(535, "5.7.8", "Authentication invalid"),
  authInvalidFor: (user: string) => qp(535, "5.7.8", `Authentication invalid for ${user}`),
  authBadCramResponse: qp(504, "5.5.2", "Invalid authentication string"),
  authOk: (text: string) => qp(235, "2.7.0", text),
  authFailed: (text: string) => qp(535, "5.7.8", text),
  authTemporaryFailure: qp(454, "4.7.0", "Temporary authentication failure"),
  tooManyAuthFailures: ours(421, "4.7.0", "Too many failed authentication attempts, closing connection"),
} as const;

const HAS_STATUS = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;

/**
 * The lines to write for `reply`, with `text` (a plugin's lines) in place of its own when given,
 * and the enhanced status code in front when it is shown (`enhanced`: the session speaks
 * ENHANCEDSTATUSCODES).
 */
export function replyLines(reply: Reply, text: readonly string[] | undefined, enhanced: boolean): readonly string[] {
  const lines = text && text.length > 0 ? text : reply.lines;
  const prefix = statusPrefix(reply, enhanced);
  return prefix === "" ? lines : lines.map((l) => (HAS_STATUS.test(l) ? l : prefix + l));
}

/**
 * What goes before a line of `reply`'s own text: its enhanced status and a space when shown (see
 * replyLines), else "". The table's texts never begin with a status of their own.
 */
export function statusPrefix(reply: Reply, enhanced: boolean): string {
  if (reply.status === "" || (reply.qpsmtpd && !enhanced)) return "";
  let prefix = PREFIXES.get(reply.status);
  if (prefix === undefined) PREFIXES.set(reply.status, prefix = `${reply.status} `);
  return prefix;
}

/** Each status with its space, made once (the statuses are the table's few constants). */
const PREFIXES = new Map<string, string>();
