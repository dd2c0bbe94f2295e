/** Sending one message through content scanners in a TestSession, and reading what was queued. */
import { OK } from "qpsmtpd";
import { type TestLogLine, type TestReply, TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";

export interface Delivery {
  /** The reply to the message's final dot. */
  r: TestReply;
  t: TestSession;
  /** The message as the queue got it (header, blank line, body), or undefined when not queued. */
  queued: string | undefined;
  /** The envelope as the queue got it. */
  envelope: { from: string; to: string[] } | undefined;
}

/** A small message dated now: `Subject`, extra header lines, then the body. */
export function mail(subject: string, body: string, headers: string[] = []): string {
  return [
    "From: Alice <alice@example.net>",
    "To: bob@example.org",
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString().replace(/GMT$/, "+0000")}`, // now: no rule about old dates
    "Message-ID: <scan-test@example.net>",
    ...headers,
    "",
    body,
    "",
  ].join("\n");
}

/**
 * Sends `message` through `plugins`, every recipient and the queue accepted by mocks; the queue
 * mock keeps the message. `relay` makes the client a relay client first. `rcptMock: false` leaves
 * RCPT to the plugins (a mock runs first in its chain: plugins' rcpt hooks would not run).
 */
export async function deliver(
  plugins: string[],
  message: string,
  opts: Omit<TestSessionOptions, "plugins"> & { from?: string; to?: string[]; relay?: boolean; rcptMock?: boolean } = {},
): Promise<Delivery> {
  const t = await TestSession.start({ ...opts, plugins });
  if (opts.relay) t.connection.relay_client(true);
  let queued: string | undefined;
  let envelope: Delivery["envelope"];
  if (opts.rcptMock !== false) t.mockHook("rcpt", () => OK);
  t.mockHook("queue", async (txn) => {
    let s = "";
    for await (const c of txn.message_stream()) s += new TextDecoder().decode(c);
    queued = s;
    envelope = { from: txn.sender()?.format() ?? "", to: txn.recipients().map((r) => r.format()) };
    return [OK, "queued"];
  });
  await t.command("EHLO client.example");
  await t.command(`MAIL FROM:${opts.from ?? "<alice@example.net>"}`);
  for (const r of opts.to ?? ["<bob@example.org>"]) await t.command(`RCPT TO:${r}`);
  await t.command("DATA");
  const r = await t.data(message);
  return {
    r,
    t,
    get queued() {
      return queued;
    },
    get envelope() {
      return envelope;
    },
  };
}

/** The queued header block (up to the blank line). */
export function headerOf(message: string | undefined): string {
  return (message ?? "").split("\n\n")[0] ?? "";
}

/** Log lines of `plugin` (its escaped name) that match `re`. */
export function logged(t: TestSession, plugin: string, re: RegExp): TestLogLine[] {
  return t.logs.filter((l) => l.plugin === plugin && re.test(l.message));
}
