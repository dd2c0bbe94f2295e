/**
 * The public SMTP/LMTP client against Postfix's smtp-sink (a real server): SMTP over TCP, LMTP
 * over TCP and over a unix socket, with one reply per recipient after the data. STARTTLS and
 * BDAT against a private Postfix smtpd (tests/helpers/postfix_smtpd.ts); a reply injected after
 * STARTTLS from a fault-injecting fake peer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DotStuffer, SmtpClient } from "qpsmtpd";
import { CrlfEncoder } from "../../src/api/smtp_client.ts";
import { freePort } from "../e2e/helpers.ts";
import { fakePeer, lineScript } from "../helpers/fake_peers.ts";
import { type PostfixSmtpd, postfixSmtpdUsable, startPostfixSmtpd } from "../helpers/postfix_smtpd.ts";

const SINK = existsSync("/usr/sbin/smtp-sink") ? "/usr/sbin/smtp-sink" : "smtp-sink";
const sinks: ChildProcess[] = [];
afterAll(() => sinks.forEach((p) => p.kill()));

/** Starts smtp-sink (LMTP with -L) on `where` and waits until it accepts connections. */
async function sink(where: string, args: string[] = []): Promise<void> {
  // smtp-sink refuses to run as root without a user to become.
  const user = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  const p = spawn(SINK, [...user, ...args, where, "10"], { stdio: "ignore" });
  sinks.push(p);
  const target = where.startsWith("unix:") ? { path: where.slice(5) } : { host: "127.0.0.1", port: Number(where.split(":").pop()) };
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect(target as net.NetConnectOpts);
      c.once("connect", () => (c.destroy(), res(true)));
      c.once("error", () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smtp-sink did not start on ${where}`);
}

async function* message(): AsyncGenerator<Uint8Array> {
  yield Buffer.from("Subject: hi\n\n.a line that starts with a dot\nbody\n");
}

describe("SmtpClient", () => {
  test("speaks SMTP: greeting, EHLO capabilities, envelope, dot-stuffed data, one reply", async () => {
    const port = await freePort();
    await sink(`127.0.0.1:${port}`);
    const c = await SmtpClient.connect({ host: "127.0.0.1", port }, { timeoutMs: 5000 });
    expect((await c.read()).code).toBe(220);
    const caps = await c.hello("client.example");
    expect(caps.has("PIPELINING")).toBe(true);
    await c.write("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    expect([(await c.read()).code, (await c.read()).code, (await c.read()).code]).toEqual([250, 250, 354]);
    await c.sendData(message());
    expect((await c.read()).code).toBe(250);
    c.close();
  });

  for (const kind of ["tcp", "unix"] as const) {
    test(`speaks LMTP over ${kind}: LHLO, then one reply per recipient after the data`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "qplmtp-"));
      chmodSync(dir, 0o777); // smtp-sink may run as nobody
      const where = kind === "tcp" ? `127.0.0.1:${await freePort()}` : `unix:${join(dir, "lmtp.sock")}`;
      await sink(where, ["-L"]);
      const target = kind === "tcp" ? { host: "127.0.0.1", port: Number(where.split(":").pop()) } : { path: where.slice(5) };
      const c = await SmtpClient.connect(target, { lmtp: true, timeoutMs: 5000 });
      expect((await c.read()).code).toBe(220);
      await c.hello("client.example");
      await c.write("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
      for (const want of [250, 250, 250, 354]) expect((await c.read()).code).toBe(want);
      await c.sendData(message());
      expect([(await c.read()).code, (await c.read()).code]).toEqual([250, 250]);
      c.close();
    });
  }

  test("a server that never answers: read() gives up after timeoutMs; an aborted signal closes the connection", async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const c = await SmtpClient.connect({ host: "127.0.0.1", port }, { timeoutMs: 200 });
      expect(c.read()).rejects.toThrow("timed out waiting for a reply");
      const ac = new AbortController();
      const d = await SmtpClient.connect({ host: "127.0.0.1", port }, { timeoutMs: 60_000, signal: ac.signal });
      const pending = d.read().then(() => "answered", (e: Error) => e.message);
      ac.abort(new Error("plugin timed out"));
      expect(await pending).toContain("aborted");
    } finally {
      silent.close();
    }
  });

  test("DotStuffer: CRLF line ends, stuffed dots, a stray CR made harmless, the final dot", () => {
    const d = new DotStuffer();
    const out = Buffer.concat([d.push(Buffer.from(".x\nbare\rcr\r\nend")), d.end()]).toString("latin1");
    expect(out).toBe("..x\r\nbare cr\r\nend\r\n.\r\n");
  });
});

describe("DotStuffer and CrlfEncoder", () => {
  test("DotStuffer: a message split anywhere comes out the same; a final line end is added before the dot", () => {
    const d = new DotStuffer();
    const out = Buffer.concat([d.push(Buffer.from(".a\nb\r\nc\rd\n.")), d.push(Buffer.from("\n..\n")), d.end()]).toString();
    expect(out).toBe("..a\r\nb\r\nc d\r\n..\r\n...\r\n.\r\n");
    const e = new DotStuffer();
    expect(Buffer.concat([e.push(Buffer.from("x")), e.end()]).toString()).toBe("x\r\n.\r\n");
  });

  test("CrlfEncoder: CRLF line ends, no dot-stuffing, a stray CR becomes a space, CR LF split across chunks stays one line end", () => {
    const c = new CrlfEncoder();
    const out = Buffer.concat([c.push(Buffer.from(".a\nb\r")), c.push(Buffer.from("\nc\rd\r")), c.push(Buffer.from("x\n.")), c.end()]);
    expect(out.toString()).toBe(".a\r\nb\r\nc d x\r\n.\r\n");
    const ended = new CrlfEncoder();
    expect(Buffer.concat([ended.push(Buffer.from("y\n")), ended.end()]).toString()).toBe("y\r\n");
    const cr = new CrlfEncoder();
    expect(Buffer.concat([cr.push(Buffer.from("z\r")), cr.end()]).toString()).toBe("z \r\n");
  });

  test("both make the same of any content however it is split: checked against a model of the whole, 20,000 cases", () => {
    // The whole content at once: CR LF or LF is a line end, any other CR a space; then the
    // encoder's own part (dots, the final line end, a binary body left alone).
    const canonical = (x: string) => x.replace(/\r?\n|\r/g, (m) => (m === "\r" ? " " : "\r\n"));
    const ended = (x: string) => (x === "" || x.endsWith("\r\n") ? x : `${x}\r\n`);
    const crlfModel = (x: string, binaryBody: boolean) => {
      const blank = binaryBody ? /(?:^|\n)\r?\n/.exec(x) : null;
      if (!blank) return ended(canonical(x));
      const k = blank.index + blank[0].length;
      return canonical(x.slice(0, k)) + x.slice(k);
    };
    const dotModel = (x: string) => {
      const c = canonical(x).replace(/(^|\n)\./g, "$1..");
      return c === "" || c.endsWith("\r\n") ? `${c}.\r\n` : `${c}\r\n.\r\n`;
    };
    let seed = 9;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const pieces = ["a", ".", "\r", "\n", "\r\n", "\n\n", ".\r", "\xff", "\0", "text "];
    for (let t = 0; t < 20_000; t++) {
      const text = Array.from({ length: rnd(24) }, () => pieces[rnd(pieces.length)]).join("");
      const bytes = Buffer.from(text, "latin1");
      const cuts = Array.from({ length: rnd(5) }, () => rnd(bytes.length + 1)).sort((x, y) => x - y);
      const parts = [0, ...cuts].map((from, i) => bytes.subarray(from, [...cuts, bytes.length][i]));
      const run = (e: { push(c: Uint8Array): Uint8Array; end(): Uint8Array }) =>
        Buffer.concat([...parts.map((p) => e.push(p)), e.end()]).toString("latin1");
      const binaryBody = t % 3 === 0;
      const where = `${JSON.stringify(parts.map((p) => p.toString("latin1")))}${binaryBody ? " (binaryBody)" : ""}`;
      expect(`${where} ${run(new CrlfEncoder({ binaryBody }))}`).toBe(`${where} ${crlfModel(text, binaryBody)}`);
      expect(`${where} ${run(new DotStuffer())}`).toBe(`${where} ${dotModel(text)}`);
    }
  });

  test("CrlfEncoder with binaryBody: the header block made canonical, the body after it untouched", () => {
    const c = new CrlfEncoder({ binaryBody: true });
    const body = Buffer.from([0, 10, 13, 46, 255, 13]);
    const out = Buffer.concat([c.push(Buffer.from("Subject: b\nX: y\n")), c.push(Buffer.concat([Buffer.from("\n"), body])), c.end()]);
    expect(Buffer.compare(out, Buffer.concat([Buffer.from("Subject: b\r\nX: y\r\n\r\n"), body]))).toBe(0);
  });
});

describe.skipIf(!postfixSmtpdUsable)("SmtpClient STARTTLS and BDAT against Postfix", () => {
  let pf: PostfixSmtpd;
  beforeAll(async () => {
    pf = await startPostfixSmtpd({
      listeners: { mx: [], small: ["message_size_limit=300"] },
      sniNames: ["sni.example.org"],
    });
  }, 60_000);
  afterAll(async () => {
    await pf?.stop();
  }, 30_000);

  async function greeted(listener = "mx"): Promise<SmtpClient> {
    const c = await SmtpClient.connect({ host: "127.0.0.1", port: pf.ports[listener]! }, { timeoutMs: 10_000 });
    expect((await c.read()).code).toBe(220);
    return c;
  }

  async function upgraded(opts: Parameters<SmtpClient["startTls"]>[0]) {
    const c = await greeted();
    expect((await c.hello("client.example")).has("STARTTLS")).toBe(true);
    expect(c.tls).toBeUndefined();
    await c.write("STARTTLS\r\n");
    expect((await c.read()).code).toBe(220);
    return { c, info: await c.startTls(opts) };
  }

  test("startTls: encrypted; the self-signed certificate is not verified; a new EHLO has no STARTTLS", async () => {
    const { c, info } = await upgraded({});
    expect(info.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(info.cipher).not.toBe("");
    expect(info.verified).toBe(false);
    expect(info.verifyError).toBeDefined();
    expect(info.peerName).toBe("mx.example.org");
    expect(c.tls).toEqual(info);
    const caps = await c.hello("client.example");
    expect(caps.has("STARTTLS")).toBe(false);
    expect(caps.has("CHUNKING")).toBe(true);
    await c.write("MAIL FROM:<a@example.net>\r\n");
    expect((await c.read()).code).toBe(250);
    c.close();
  });

  test("startTls: verified with the CA and the name; the wrong name or no name (an IP address) is not", async () => {
    expect((await upgraded({ servername: "mx.example.org", ca: readFileSync(pf.certFile) })).info.verified).toBe(true);
    const wrong = await upgraded({ servername: "other.example.org", ca: readFileSync(pf.certFile) });
    expect(wrong.info.verified).toBe(false);
    // Connected to 127.0.0.1: no SNI, and the certificate names no address.
    expect((await upgraded({ ca: readFileSync(pf.certFile) })).info.verified).toBe(false);
  });

  test("startTls sends the server name as SNI, and none for an IP address", async () => {
    const sni = await upgraded({ servername: "sni.example.org", ca: readFileSync(pf.sniCertFiles["sni.example.org"]!) });
    expect(sni.info.peerName).toBe("sni.example.org");
    expect(sni.info.verified).toBe(true);
    expect((await upgraded({ servername: "127.0.0.1" })).info.peerName).toBe("mx.example.org");
  });

  test("startTls with rejectUnauthorized: an unverified certificate throws and the connection is unusable", async () => {
    const c = await greeted();
    await c.hello("client.example");
    await c.write("STARTTLS\r\n");
    expect((await c.read()).code).toBe(220);
    await expect(c.startTls({ servername: "mx.example.org", rejectUnauthorized: true })).rejects.toThrow("certificate not verified");
    await expect(c.write("QUIT\r\n")).rejects.toThrow();
    expect(c.tls).toBeUndefined();
  });

  test("sendBdat: chunks of chunkSize with exact counts, BDAT 0 LAST on a chunk boundary, pipelined or not", async () => {
    for (const pipelining of [false, true]) {
      const c = await greeted();
      await c.hello("client.example");
      const from = `bdat-${pipelining}@example.net`;
      await c.write(`MAIL FROM:<${from}>\r\nRCPT TO:<b@example.org>\r\n`);
      expect([(await c.read()).code, (await c.read()).code]).toEqual([250, 250]);
      // 4 lines of 5 bytes with CRLF: 20 bytes, two chunks of 10, then BDAT 0 LAST.
      const msg = async function* (): AsyncGenerator<Uint8Array> {
        yield Buffer.from("X: 1\nX: 2\n\n");
        yield Buffer.from("abcd\n");
      };
      const r = await c.sendBdat(msg(), { chunkSize: 10, pipelining });
      expect(r.code).toBe(250);
      expect(r.lines[0]).toContain("20 bytes queued");
      c.close();
      const sent = (await pf.session(from)).filter((l) => l.startsWith("< ")).map((l) => l.replace(/^< [^:]*: /, ""));
      expect(sent.filter((l) => l.startsWith("BDAT"))).toEqual(["BDAT 10", "BDAT 10", "BDAT 0 LAST"]);
    }
  });

  test("sendBdat: a refused chunk ends the sending; its refusal is returned after the replies in flight", async () => {
    const c = await greeted("small");
    await c.hello("client.example");
    await c.write("MAIL FROM:<big@example.net>\r\nRCPT TO:<b@example.org>\r\n");
    expect([(await c.read()).code, (await c.read()).code]).toEqual([250, 250]);
    let pieces = 0;
    async function* big(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        pieces++;
        yield Buffer.from(`${"y".repeat(98)}\n`);
      }
    }
    const r = await c.sendBdat(big(), { chunkSize: 200, pipelining: true });
    expect(r.code).toBe(552);
    expect(pieces).toBeLessThan(100);
    // The session is still in step: the next command gets its own reply.
    await c.write("RSET\r\n");
    expect((await c.read()).code).toBe(250);
    c.close();
  });

  test("sendEnvelope: one by one without PIPELINING, stopping when MAIL is refused; all at once with it", async () => {
    const peer = await fakePeer(lineScript("220 mx\r\n", ["250 mx\r\n", "550 no such sender\r\n"]));
    try {
      const c = await SmtpClient.connect(peer.target, { timeoutMs: 5000 });
      await c.read();
      await c.hello("client.example");
      const replies = await c.sendEnvelope(["MAIL FROM:<a@example.net>\r\n", "RCPT TO:<b@example.org>\r\n"], false);
      expect(replies.map((r) => r.code)).toEqual([550]);
      expect(peer.received.join("")).not.toContain("RCPT");
      c.close();
    } finally {
      await peer.close();
    }
    const port = await freePort();
    await sink(`127.0.0.1:${port}`);
    const c = await SmtpClient.connect({ host: "127.0.0.1", port }, { timeoutMs: 5000 });
    await c.read();
    await c.hello("client.example");
    const all = await c.sendEnvelope(["MAIL FROM:<a@example.net>\r\n", "RCPT TO:<b@example.org>\r\n", "RCPT TO:<c@example.org>\r\n"], true);
    expect(all.map((r) => r.code)).toEqual([250, 250, 250]);
    c.close();
  });

  test("a reply injected after the 220 to STARTTLS makes startTls throw", async () => {
    const peer = await fakePeer(lineScript("220 mx\r\n", ["250-mx\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 injected\r\n"]));
    try {
      const c = await SmtpClient.connect(peer.target, { timeoutMs: 5000 });
      await c.read();
      await c.hello("client.example");
      await c.write("STARTTLS\r\n");
      expect((await c.read()).code).toBe(220);
      // Give the injected line time to arrive, as it would behind the 220 in one packet.
      while (!peer.received[0]?.includes("STARTTLS")) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      await expect(c.startTls({})).rejects.toThrow("the server sent data after its STARTTLS reply");
    } finally {
      await peer.close();
    }
  });
});
