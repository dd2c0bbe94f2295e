/**
 * queue/lmtp: delivers each message to an LMTP server (RFC 2033) such as Dovecot's or Cyrus's
 * `lmtpd`, over TCP or a unix socket. LMTP answers once per recipient after the data, so a
 * message can reach some mailboxes and not others; the reply says what happened, as Postfix's
 * lmtp client does.
 *
 * Hooks: queue. Config files: none.
 * Arguments (key/value): `socket PATH` (a unix socket), or `host HOST` with `port PORT` (24);
 * `lmtp_timeout SECONDS` (30): the time limit for connecting and for each reply. Without
 * `socket` or `host`, the socket is Dovecot's `/var/run/dovecot/lmtp`. The whole delivery is
 * also bounded by the plugin's time limit (`plugin_timeout`, or `timeout N` on its line). Any
 * other word stops start-up.
 * Notes: transaction `lmtp_failed` (the recipients not delivered, each `<addr> CODE text`), for
 * `queue_post` plugins.
 * Replies:
 * - every recipient delivered → `250 Queued: <the server's last reply>`;
 * - some delivered, some refused after the data (4xx or 5xx) → `250` saying how many got it, and a
 *   log line per recipient that did not, with its code, as Postfix's lmtp client does (SMTP has
 *   one reply per message, and there is no queue here to retry or bounce from: check recipients
 *   at RCPT time, e.g. with qmail_deliverable, so that this is rare);
 * - none delivered → the server's refusal as it was: `552 <its text>` when every refusal was
 *   permanent, `452 <its text>` when one was temporary, so the sender retries;
 * - a temporary refusal at RCPT while others were accepted → `452` before any data is sent:
 *   nothing is delivered yet, so the whole message is retried rather than losing that mailbox;
 * - the sender refused → `552`/`452` with the server's text.
 * Failure policy: never accepts a message the server did not take. The server down, refusing the
 * connection, silent past `lmtp_timeout`, or closing mid-transaction → DECLINED (`451`, or the
 * next queue plugin); when it closes after some per-recipient replies the message may reach those
 * mailboxes twice on the retry, which is logged: a duplicate is better than a loss.
 * The content goes out canonical: CRLF line ends, stray CRs replaced, dots stuffed.
 */
import {
  type Check,
  type ClientReply,
  type ClientTarget,
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
  SmtpClient,
  type Transaction,
} from "qpsmtpd";

declare module "qpsmtpd" {
  interface TransactionNotes {
    /** queue/lmtp: recipients the LMTP server did not take, each `<addr> CODE text`. */
    lmtp_failed: string[];
  }
}

interface Data {
  target: ClientTarget;
  /** For log lines: `host:port` or the socket path. */
  where: string;
  timeoutMs: number;
}

export const init: Init<Data> = function (_server, ...args) {
  const o = parsePluginArgs("queue/lmtp", args, { values: ["host", "port", "socket", "lmtp_timeout"] }).values;
  const port = o["port"] ?? "24";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`queue/lmtp: bad port "${port}"`);
  const seconds = o["lmtp_timeout"] ?? "30";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`queue/lmtp: bad lmtp_timeout "${seconds}"`);
  if (o["socket"] !== undefined && o["host"] !== undefined) throw new Error("queue/lmtp: give socket or host, not both");
  const host = o["host"];
  const path = o["socket"] ?? (host === undefined ? "/var/run/dovecot/lmtp" : undefined);
  this.data.target = path !== undefined ? { path } : { host: host!, port: Number(port) };
  this.data.where = path ?? `${host}:${port}`;
  this.data.timeoutMs = Number(seconds) * 1000;
};

const text = (r: ClientReply): string => `${r.code} ${r.lines.join(" ")}`;
/** The reply text without the code, for our own reply (the engine puts the code in front). */
const words = (r: ClientReply): string => r.lines.join(" ");
const permanent = (r: ClientReply): boolean => r.code >= 500;

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const { target, where, timeoutMs } = this.data;
  const rcpts = txn.recipients();
  if (rcpts.length === 0) return unavailable(this, "the transaction has no recipient");
  let client: SmtpClient | undefined;
  // Set once the final dot went out: from then on a broken connection may hide deliveries.
  let dataSent = false;
  try {
    client = await SmtpClient.connect(target, { lmtp: true, timeoutMs, signal: this.signal });
    const greeting = await client.read();
    if (greeting.code !== 220) return unavailable(this, `greeting ${text(greeting)}`);
    const caps = await client.hello(this.qp.me);
    const envelope = [
      `MAIL FROM:${txn.sender()?.format() ?? "<>"}${caps.has("8BITMIME") ? " BODY=8BITMIME" : ""}\r\n`,
      ...rcpts.map((r) => `RCPT TO:${r.format()}\r\n`),
    ];
    const replies = await client.sendEnvelope(envelope, caps.has("PIPELINING"));
    const mail = replies[0]!;
    if (mail.code !== 250) {
      if (mail.code < 400) return unavailable(this, `MAIL answered ${text(mail)}`);
      this.log(LOGWARN, `${where} refused the sender: ${text(mail)}`);
      return [permanent(mail) ? DENY : DENYSOFT, words(mail)];
    }
    const accepted: string[] = [];
    const failed: Array<[string, ClientReply]> = [];
    rcpts.forEach((r, i) => {
      const reply = replies[i + 1]!;
      if (reply.code === 250 || reply.code === 251) accepted.push(r.format());
      else failed.push([r.format(), reply]);
    });
    if (accepted.length === 0) return refused(this, txn, failed, "no recipient accepted");
    const deferred = failed.filter(([, r]) => !permanent(r));
    if (deferred.length > 0) {
      // Nothing is delivered yet: retrying the whole message later loses no mailbox.
      logFailures(this, failed, "at RCPT");
      return [DENYSOFT, `${words(deferred[0]![1])} (nothing delivered; try again later)`];
    }
    await client.write("DATA\r\n");
    const go = await client.read();
    if (go.code !== 354) {
      if (go.code < 400) return unavailable(this, `DATA answered ${text(go)}`);
      return [permanent(go) ? DENY : DENYSOFT, words(go)];
    }
    await client.sendData(txn.message_stream());
    dataSent = true;
    const results: Array<[string, ClientReply]> = [];
    for (const rcpt of accepted) results.push([rcpt, await client.read()]);
    await client.write("QUIT\r\n").catch(() => undefined);
    const delivered = results.filter(([, r]) => r.code >= 200 && r.code < 300);
    failed.push(...results.filter(([, r]) => r.code < 200 || r.code >= 300));
    if (delivered.length === 0) return refused(this, txn, failed, "no mailbox took the message");
    if (failed.length === 0) {
      this.log(LOGINFO, `delivered to ${delivered.length} recipient(s) at ${where}`);
      return [OK, `Queued: ${words(delivered[delivered.length - 1]![1])}`];
    }
    logFailures(this, failed, "");
    txn.notes("lmtp_failed", failed.map(([rcpt, r]) => `${rcpt} ${text(r)}`));
    this.log(LOGWARN, `delivered to ${delivered.length} of ${rcpts.length} recipients at ${where}`);
    return [OK, `Queued: delivered to ${delivered.length} of ${rcpts.length} recipients`];
  } catch (e) {
    const why = (e as Error).message;
    if (dataSent) return unavailable(this, `${why} after the data; some mailboxes may get the message twice on the retry`);
    return unavailable(this, why);
  } finally {
    client?.close();
  }
};

function logFailures(p: HookContext<Data>, failed: ReadonlyArray<[string, ClientReply]>, stage: string): void {
  for (const [rcpt, r] of failed) p.log(LOGWARN, `not delivered to ${rcpt}${stage ? ` ${stage}` : ""}: ${text(r)}`);
}

/** Nothing was delivered: the refusal as the server gave it (temporary when any one was). */
function refused(p: HookContext<Data>, txn: Transaction, failed: Array<[string, ClientReply]>, why: string): Result {
  logFailures(p, failed, "");
  txn.notes("lmtp_failed", failed.map(([rcpt, r]) => `${rcpt} ${text(r)}`));
  const temporary = failed.find(([, r]) => !permanent(r));
  const first = (temporary ?? failed[0]!)[1];
  return [temporary ? DENYSOFT : DENY, `${words(first)} (${why})`];
}

function unavailable(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `LMTP delivery to ${p.data.where} failed, the message stays with the sender: ${why}`);
  return DECLINED;
}

/** `qpsmtpd check`: the LMTP server answers its greeting and LHLO. */
export const check: Check<Data> = async function () {
  const { target, where, timeoutMs } = this.data;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect(target, { lmtp: true, timeoutMs: Math.min(timeoutMs, 10_000), signal: this.signal });
    const greeting = await client.read();
    if (greeting.code !== 220) return [`the LMTP server at ${where} greets with ${text(greeting)}`];
    await client.hello(this.server.me);
    await client.write("QUIT\r\n");
    return [];
  } catch (e) {
    return [`the LMTP server at ${where} does not answer: ${(e as Error).message}`];
  } finally {
    client?.close();
  }
};
