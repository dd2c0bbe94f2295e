/** Small session helpers shared by the one-file-per-plugin tests in tests/plugins/. */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import type { TestDnsServer } from "./dns_server.ts";

/**
 * Sends one message through `plugins`: every recipient and the queue are accepted by mocks, so
 * the DATA reply is the plugins' verdict. Returns that reply and the session.
 */
export async function sendMessage(plugins: string[], message: string, opts: { from?: string; to?: string[] } = {}) {
  const t = await TestSession.start({ plugins });
  t.mockHook("rcpt", () => OK);
  t.mockHook("queue", () => [OK, "queued"]);
  await t.command("EHLO c");
  await t.command(`MAIL FROM:${opts.from ?? "<a@example.net>"}`);
  for (const r of opts.to ?? ["<b@example.org>"]) await t.command(`RCPT TO:${r}`);
  await t.command("DATA");
  return { r: await t.data(message), t };
}

/**
 * One message from `from` to bob@example.org through a session started with `o` (which accepts
 * that recipient), queued by a mock that reads it back: the DATA reply, the message as queued and
 * the session. `relay` makes the client a relay client; `atQueue` is called as the message is queued.
 */
export async function queuedMessage(
  o: TestSessionOptions,
  message: string,
  { from, relay = false, atQueue = () => {} }: { from: string; relay?: boolean; atQueue?: () => void },
) {
  const t = await TestSession.start(o);
  if (relay) t.connection.relay_client(true);
  let queued = "";
  t.mockHook("queue", async (txn) => {
    atQueue();
    for await (const c of txn.message_stream()) queued += Buffer.from(c).toString("latin1");
    return OK;
  });
  await t.command("EHLO client.example");
  await t.command(`MAIL FROM:<${from}>`);
  await t.command("RCPT TO:<bob@example.org>");
  await t.command("DATA");
  return { r: await t.data(message), t, queued };
}

/** A session from `ip` that has said `EHLO c`. */
export async function greeted(opts: TestSessionOptions, ip = "192.0.2.50"): Promise<TestSession> {
  const t = await TestSession.start({ ...opts, remoteIp: ip });
  await t.command("EHLO c");
  return t;
}

/** Starts a session, says `EHLO client.example` and `MAIL FROM:from`; the MAIL reply and the session. */
export async function ehloMailFrom(
  o: TestSessionOptions,
  from = "<a@example.net>",
): Promise<{ code: number; text: string; t: TestSession }> {
  const t = await TestSession.start(o);
  await t.command("EHLO client.example");
  return { ...(await t.command(`MAIL FROM:${from}`)), t };
}

/** `o` with `dns_servers` pointing at the loopback `dns` and `dns_timeout` (a config in `o` wins). */
export function withDnsServer(dns: TestDnsServer, o: TestSessionOptions, timeout: string): TestSessionOptions {
  return { ...o, config: { dns_servers: `127.0.0.1:${dns.port}`, dns_timeout: timeout, ...o.config } };
}

/** An executable shell script (`#!/bin/sh` then `body`) in a new temp directory; its path. */
export function script(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "qpscript-"));
  const f = join(dir, "prog");
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
}

/** A session whose `config/logging` is `logging`, with rcpt_ok accepting example.org. */
export async function logged(logging: string, plugins: string[] = ["rcpt_ok"]): Promise<TestSession> {
  const t = await TestSession.start({ plugins, config: { logging, rcpthosts: "example.org" } });
  return t;
}

/** Runs `fn` with stderr captured; returns what was written. */
export async function captureStderr(fn: () => Promise<void>): Promise<string> {
  let out = "";
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((out += String(s)), true)) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = orig;
  }
  return out;
}
