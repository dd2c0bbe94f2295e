/**
 * Postfix as the reference: the same dialogues against a private Postfix smtpd (its own
 * config_directory, a loopback port, never the system's service) and against dist/qpsmtpd, reply
 * code by reply code. Every place where the two differ is listed in DIFFERENCES with its reason;
 * a difference that is not listed fails the test, and so does a listed one that went away, so the
 * list stays true.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { type PostfixSmtpd, startPostfixSmtpd } from "../helpers/postfix_smtpd.ts";
import { configDir, type Daemon, startDaemon } from "./helpers.ts";

/** One reply: its code and every line's text. */
interface Reply {
  readonly code: number;
  readonly lines: string[];
}

/** Sends each step (a command line, or raw bytes after `RAW `) and reads one reply per step. */
async function dialogue(port: number, steps: readonly string[]): Promise<Reply[]> {
  const sock = net.connect(port, "127.0.0.1");
  sock.setEncoding("latin1");
  let buf = "";
  let closed = false;
  const waiters: Array<() => void> = [];
  sock.on("data", (d: string) => {
    buf += d;
    for (const w of waiters.splice(0)) w();
  });
  sock.on("close", () => {
    closed = true;
    for (const w of waiters.splice(0)) w();
  });
  sock.on("error", () => undefined);
  const read = async (): Promise<Reply> => {
    const until = Date.now() + 10_000;
    for (;;) {
      const m = /^((?:\d{3}-.*\r\n)*)(\d{3}) (.*)\r\n/.exec(buf);
      if (m) {
        buf = buf.slice(m[0].length);
        const lines = [...m[1]!.split("\r\n").filter(Boolean).map((l) => l.slice(4)), m[3]!];
        return { code: Number(m[2]), lines };
      }
      if (closed) return { code: 0, lines: ["(closed)"] };
      if (Date.now() > until) return { code: -1, lines: ["(no reply)"] };
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  await new Promise<void>((r) => sock.once("connect", () => r()));
  await read();
  const out: Reply[] = [];
  for (const step of steps) {
    const bytes = step.startsWith("RAW ") ? step.slice(4) : `${step}\r\n`;
    sock.write(Buffer.from(bytes, "utf8"));
    out.push(await read());
  }
  sock.destroy();
  return out;
}

const ENVELOPE = ["EHLO client.example", "MAIL FROM:<a@example.net>", "RCPT TO:<u@example.org>"];

/** name → steps; compared by reply code. */
const DIALOGUES: Record<string, readonly string[]> = {
  "a message by DATA": [...ENVELOPE, "DATA", "RAW Subject: x\r\n\r\nbody\r\n.\r\n", "QUIT"],
  "a message by BDAT in two chunks": [...ENVELOPE, "RAW BDAT 14\r\nSubject: x\r\n\r\n", "RAW BDAT 6 LAST\r\nbody\r\n", "QUIT"],
  "BDAT 0 LAST ends a message": [...ENVELOPE, "RAW BDAT 14\r\nSubject: x\r\n\r\n", "BDAT 0 LAST"],
  "BDAT before MAIL is refused and its octets skipped": ["EHLO client.example", "RAW BDAT 6\r\nRSET\r\n", "NOOP"],
  "BDAT before RCPT": ["EHLO client.example", "MAIL FROM:<a@example.net>", "RAW BDAT 6\r\nRSET\r\n", "NOOP"],
  "DATA after BDAT in one transaction": [...ENVELOPE, "RAW BDAT 14\r\nSubject: x\r\n\r\n", "DATA"],
  "RSET between chunks, then a new transaction": [...ENVELOPE, "RAW BDAT 14\r\nSubject: x\r\n\r\n", "RSET", ...ENVELOPE.slice(1)],
  "BDAT with a size that is not a number": ["EHLO client.example", "BDAT abc"],
  "MAIL before EHLO": ["MAIL FROM:<a@example.net>"],
  "RCPT before MAIL": ["EHLO client.example", "RCPT TO:<u@example.org>"],
  "DATA before RCPT": ["EHLO client.example", "MAIL FROM:<a@example.net>", "DATA"],
  "DSN parameters": [
    "EHLO client.example",
    "MAIL FROM:<a@example.net> RET=HDRS ENVID=QQ314159",
    "RCPT TO:<u@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.org",
    "RCPT TO:<v@example.org> NOTIFY=NEVER",
  ],
  "bad DSN parameters": [
    "EHLO client.example",
    "MAIL FROM:<a@example.net> RET=BAD",
    "MAIL FROM:<a@example.net>",
    "RCPT TO:<u@example.org> NOTIFY=NEVER,SUCCESS",
    "RCPT TO:<u@example.org> NOTIFY=SOMETIMES",
  ],
  "an unknown MAIL parameter": ["EHLO client.example", "MAIL FROM:<a@example.net> FOO=bar"],
  "SIZE over the limit": ["EHLO client.example", "MAIL FROM:<a@example.net> SIZE=99999999"],
  "SMTPUTF8 addresses": ["EHLO client.example", "MAIL FROM:<jörg@bücher.example> SMTPUTF8", "RCPT TO:<anna@example.org>"],
  "a UTF-8 address without SMTPUTF8": ["EHLO client.example", "MAIL FROM:<jörg@bücher.example>"],
  "relaying to a domain that is not ours": [...ENVELOPE.slice(0, 2), "RCPT TO:<x@evil.test>"],
  "routing characters in the local part": [...ENVELOPE.slice(0, 2), "RCPT TO:<x%evil.test@example.org>"],
  "REQUIRETLS on a plain session": ["EHLO client.example", "MAIL FROM:<a@example.net> REQUIRETLS"],
  "BODY=BINARYMIME": ["EHLO client.example", "MAIL FROM:<a@example.net> BODY=BINARYMIME"],
  "XCLIENT from a client that may not": ["EHLO client.example", "XCLIENT ADDR=192.0.2.1"],
  "a second EHLO": ["EHLO client.example", "EHLO client.example"],
  "HELP": ["HELP"],
  "an unknown command": ["FOO bar"],
  "VRFY": ["VRFY u"],
  "NOOP and RSET": ["NOOP", "RSET"],
};

/** Where we answer otherwise than Postfix, and why. Keyed `dialogue #step` (1-based). */
const DIFFERENCES: Record<string, { readonly postfix: number; readonly ours: number; readonly why: string }> = {
  "MAIL before EHLO #1": {
    postfix: 250,
    ours: 503,
    why: "qpsmtpd's contract: say hello first (503); Postfix does not require HELO unless smtpd_helo_required",
  },
  "DATA before RCPT #3": {
    postfix: 554,
    ours: 503,
    why: "RFC 5321 3.3 allows either; qpsmtpd answers 503 (RCPT first), Postfix 554 (no valid recipients)",
  },
  "BDAT before RCPT #3": { postfix: 554, ours: 503, why: "as DATA before RCPT; both read and drop the chunk's octets" },
  "a UTF-8 address without SMTPUTF8 #2": {
    postfix: 501,
    ours: 553,
    why: "RFC 6531 3.5 and the issue: 553 5.6.7, which tells the client that SMTPUTF8 would help; Postfix 3.7 calls it bad syntax",
  },
  "relaying to a domain that is not ours #3": {
    postfix: 454,
    ours: 550,
    why:
      "qpsmtpd's rcpt_ok refuses relaying for good (550 5.7.1); Postfix's default smtpd_relay_restrictions defers it (454) so a broken config can be fixed before mail bounces",
  },
  "routing characters in the local part #3": {
    postfix: 454,
    ours: 550,
    why:
      "both refuse the relay: Postfix rewrites x%evil.test@example.org to x@evil.test (allow_percent_hack) and defers it as above; rcpt_ok refuses routing characters for good",
  },
  "REQUIRETLS on a plain session #2": {
    postfix: 555,
    ours: 530,
    why: "Postfix 3.7 has no REQUIRETLS; RFC 8689 wants 530 5.7.10 without TLS",
  },
  "BODY=BINARYMIME #2": { postfix: 555, ours: 250, why: "Postfix 3.7 has no BINARYMIME; we accept it with BDAT (RFC 3030)" },
  "a second EHLO #2": { postfix: 250, ours: 503, why: "qpsmtpd's contract: a second HELO/EHLO is 503 (greet again only after STARTTLS)" },
  "HELP #1": { postfix: 500, ours: 214, why: "qpsmtpd answers HELP (214); Postfix does not know the command" },
};

let postfix: PostfixSmtpd;
let ours: Daemon;

beforeAll(async () => {
  postfix = await startPostfixSmtpd({
    listeners: { main: [] },
    // Only 127.0.0.2 may relay, so the client on 127.0.0.1 is an outsider, as ours sees it.
    main:
      "mynetworks = 127.0.0.2/32\nrelay_domains = example.org\nmessage_size_limit = 1000000\nsmtputf8_enable = yes\nsmtpd_error_sleep_time = 0\n",
  });
  ours = await startDaemon(
    configDir({ me: "mx.example.org\n", rcpthosts: "example.org\n", databytes: "1000000\n", plugins: "rcpt_ok\nqueue/discard\n" }),
  );
});

afterAll(async () => {
  await postfix?.stop();
  await ours?.stop();
});

describe("the same dialogues against Postfix's smtpd and ours", () => {
  test("every difference in reply codes is one listed with its reason, and every listed one is real", async () => {
    const seen: Record<string, { postfix: number; ours: number }> = {};
    for (const [name, steps] of Object.entries(DIALOGUES)) {
      const a = await dialogue(postfix.ports.main!, steps);
      const b = await dialogue(ours.port, steps);
      steps.forEach((_, i) => {
        if (a[i]!.code !== b[i]!.code) seen[`${name} #${i + 1}`] = { postfix: a[i]!.code, ours: b[i]!.code };
      });
    }
    const listed = Object.fromEntries(Object.entries(DIFFERENCES).map(([k, d]) => [k, { postfix: d.postfix, ours: d.ours }]));
    expect(seen).toEqual(listed);
  });

  test("EHLO: the extensions both offer, and where the lists differ", async () => {
    const keywords = async (port: number): Promise<Set<string>> =>
      new Set((await dialogue(port, ["EHLO client.example"]))[0]!.lines.slice(1).map((l) => l.split(" ")[0]!));
    const [p, o] = [await keywords(postfix.ports.main!), await keywords(ours.port)];
    for (const k of ["PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN", "STARTTLS"]) {
      expect([k, p.has(k)]).toEqual([k, true]);
    }
    // Ours: BINARYMIME and LIMITS (Postfix 3.7 has neither); STARTTLS only with the tls plugin, not loaded here.
    expect([...o].filter((k) => !p.has(k)).sort()).toEqual(["BINARYMIME", "LIMITS"]);
    // Postfix's own: VRFY and ETRN (not SMTP extensions qpsmtpd has), and STARTTLS (its listener has a certificate).
    expect([...p].filter((k) => !o.has(k)).sort()).toEqual(["ETRN", "STARTTLS", "VRFY"]);
  });

  test("enhanced status codes: the same class and subject where both refuse for the same reason", async () => {
    const steps = [
      "EHLO client.example",
      "MAIL FROM:<a@example.net> FOO=bar",
      "MAIL FROM:<a@example.net> SIZE=99999999",
      "RCPT TO:<u@example.org>",
    ];
    const [a, b] = [await dialogue(postfix.ports.main!, steps), await dialogue(ours.port, steps)];
    const status = (r: Reply): string => /^\d\.\d+\.\d+/.exec(r.lines[0]!)?.[0] ?? "";
    expect(b.slice(1).map(status)).toEqual(a.slice(1).map(status));
  });
});
