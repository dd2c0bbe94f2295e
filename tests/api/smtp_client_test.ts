/**
 * The public SMTP/LMTP client against Postfix's smtp-sink (a real server): SMTP over TCP, LMTP
 * over TCP and over a unix socket, with one reply per recipient after the data.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DotStuffer, SmtpClient } from "qpsmtpd";
import { freePort } from "../e2e/helpers.ts";

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
