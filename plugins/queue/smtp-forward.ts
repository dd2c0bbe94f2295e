/**
 * queue/smtp-forward: relays each message to another SMTP server (a smarthost or the local
 * MTA), pipelining MAIL, RCPT and DATA when the server offers PIPELINING.
 *
 * Hooks: queue.
 * Arguments: `host [port]` (port 25 by default).
 * Replies: the next hop's 2xx → `250 Queued: <its reply>`. A 5xx that refuses the sender, every
 * recipient, or the message → `552` with the next hop's text, so the sender bounces at once
 * (qpsmtpd issue #150). A 4xx, some recipients refused, or a network failure → `451`, so the
 * sender retries and nothing is lost.
 * The content goes out canonical: CRLF line ends, stray CRs replaced, dots stuffed.
 */
import {
  type ClientReply,
  DECLINED,
  DENY,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  OK,
  type Result,
  SmtpClient,
} from "qpsmtpd";

interface Data {
  /** The next hop. */
  host: string;
  port: number;
}

export const register: Init<Data> = function (_server, host, port) {
  if (!host) throw new Error("queue/smtp-forward needs the next hop's host as its first argument");
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new Error(`queue/smtp-forward: bad port "${port}"`);
  this.data.host = host;
  this.data.port = port === undefined ? 25 : Number(port);
};

const text = (r: ClientReply): string => `${r.code} ${r.lines.join(" ")}`;

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const { host, port } = this.data;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect({ host, port }, { signal: this.signal });
    const greeting = await client.read();
    if (greeting.code !== 220) return temp(this, `greeting ${text(greeting)}`);
    const caps = await client.hello(this.qp.me);
    const body = caps.has("8BITMIME") ? " BODY=8BITMIME" : "";
    const rcpts = txn.recipients();
    const commands = [
      `MAIL FROM:${txn.sender()?.format() ?? "<>"}${body}\r\n`,
      ...rcpts.map((r) => `RCPT TO:${r.format()}\r\n`),
      "DATA\r\n",
    ];
    const replies: ClientReply[] = [];
    if (caps.has("PIPELINING")) {
      await client.write(commands.join(""));
      for (let i = 0; i < commands.length; i++) replies.push(await client.read());
    } else {
      for (const c of commands) {
        await client.write(c);
        const r = await client.read();
        replies.push(r);
        if (replies.length === 1 && r.code !== 250) break;
      }
    }
    const [mail, ...rest] = replies as [ClientReply, ...ClientReply[]];
    const rcptReplies = rest.slice(0, rcpts.length);
    const data = rest[rcpts.length];
    if (mail.code >= 500) return [DENY, `sender refused by ${host}: ${text(mail)}`];
    if (mail.code !== 250) return temp(this, `MAIL ${text(mail)}`);
    if (rcptReplies.every((r) => r.code >= 500)) return [DENY, `recipients refused by ${host}: ${text(rcptReplies[0]!)}`];
    const refused = rcptReplies.filter((r) => r.code >= 300);
    if (refused.length > 0) {
      // Closing without the final dot makes the next hop drop the half-begun message.
      return temp(this, `some recipients refused: ${refused.map(text).join("; ")}`);
    }
    if (data?.code !== 354) {
      return data !== undefined && data.code >= 500
        ? [DENY, `DATA refused by ${host}: ${text(data)}`]
        : temp(this, `DATA ${data ? text(data) : "no reply"}`);
    }
    await client.sendData(txn.message_stream());
    const final = await client.read();
    if (final.code >= 500) return [DENY, `message refused by ${host}: ${text(final)}`];
    if (final.code !== 250) return temp(this, `after DATA ${text(final)}`);
    await client.write("QUIT\r\n").catch(() => undefined);
    this.log(LOGINFO, `queued at ${host}:${port}: ${text(final)}`);
    return [OK, `Queued: ${final.lines.join(" ")}`];
  } catch (e) {
    return temp(this, (e as Error).message);
  } finally {
    client?.close();
  }
};

function temp(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `forwarding failed, will be retried: ${why}`);
  return DECLINED;
}
