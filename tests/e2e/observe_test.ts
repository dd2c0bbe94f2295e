/**
 * What an operator sees of a running dist/qpsmtpd: Prometheus metrics on metrics_listen (checked
 * by Prometheus' own promtool) and `qpsmtpd status` over the control socket, with one process
 * and with two workers.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, configDir, type Daemon, freePort, RawClient, run, startDaemon, swaks } from "./helpers.ts";

const running: Daemon[] = [];
afterAll(async () => {
  for (const d of running) d.proc.kill("SIGKILL");
});

async function observed(workers: number): Promise<{ d: Daemon; metricsPort: number; socket: string; dir: string }> {
  const metricsPort = await freePort();
  const socket = join(mkdtempSync(join(tmpdir(), "qpobs-")), "run", "control.sock");
  const maildir = join(mkdtempSync(join(tmpdir(), "qpobs-md-")), "Maildir");
  const dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\n",
    plugins: `rcpt_ok\nqueue/maildir ${maildir}\n`,
    "smtpd.yaml": `workers: ${workers}\nmetrics_listen: "127.0.0.1:${metricsPort}"\ncontrol_socket: ${socket}\n`,
  });
  const d = await startDaemon(dir);
  running.push(d);
  // Every worker serving, and the start-up probe's connection over.
  for (let i = 0; i < 200; i++) {
    const r = await run([BINARY, "status", "--socket", socket, "--json"]);
    const views = r.code === 0 ? (JSON.parse(r.out) as { workers: Array<{ sessions: unknown[] }> }).workers : [];
    if (views.length === workers && views.every((w) => w.sessions.length === 0)) break;
    await Bun.sleep(50);
  }
  return { d, metricsPort, socket, dir };
}

const scrape = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/** The value of a sample line (`name{labels} value`) or 0. */
function sample(text: string, line: RegExp): number {
  const m = new RegExp(`^${line.source} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

for (const workers of [1, 2]) {
  describe(`--workers ${workers}`, () => {
    test("metrics count connections, messages by class and plugin, bytes and plugin times; promtool accepts them", async () => {
      const { d, metricsPort } = await observed(workers);
      // The start-up probe's connection is in already: count from here.
      const before = await scrape(metricsPort);
      for (let i = 0; i < 3; i++) {
        expect((await swaks(d.port, "--to", "user@example.org", "--from", "a@example.net")).out).toContain("250 2.0.0 Queued");
      }
      expect((await swaks(d.port, "--to", "x@evil.test", "--from", "a@example.net")).code).not.toBe(0);
      const text = await scrape(metricsPort);
      expect(await run(["promtool", "check", "metrics"], text)).toEqual({ code: 0, out: "" });
      expect(sample(text, /qpsmtpd_connections_total/) - sample(before, /qpsmtpd_connections_total/)).toBe(4);
      expect(sample(text, /qpsmtpd_transactions_total/)).toBe(4);
      expect(sample(text, /qpsmtpd_messages_total\{class="2xx",plugin="queue::maildir"\}/)).toBe(3);
      expect(sample(text, /qpsmtpd_received_bytes_total/)).toBeGreaterThan(3 * 100);
      expect(sample(text, /qpsmtpd_plugin_call_seconds_count\{hook="rcpt",plugin="rcpt_ok"\}/)).toBe(4);
      expect(sample(text, /qpsmtpd_connections_open/)).toBe(0);
      const other = await fetch(`http://127.0.0.1:${metricsPort}/`);
      expect(other.status).toBe(404);
    });

    test("qpsmtpd status: listeners, connections by state and client, messages, plugins; root-only socket", async () => {
      const { d, socket, dir } = await observed(workers);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      await swaks(d.port, "--to", "user@example.org", "--from", "a@example.net");
      const idle = await RawClient.connect(d.port);
      await idle.reply();
      await idle.command("EHLO client.example");
      await idle.command("MAIL FROM:<a@example.net>");
      const r = await run([BINARY, "status", "--config", dir]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`, ${workers} serving process(es)`);
      expect(r.out).toContain(`listening on 127.0.0.1:${d.port}`);
      expect(r.out).toContain("connections: 1 (1 transaction)");
      expect(r.out).toContain("  127.0.0.1: 1\n");
      expect(r.out).toContain("messages accepted: 1 in the last minute, 1 in the last hour");
      expect(r.out).toContain("plugins (2): rcpt_ok, queue/maildir");
      const json = await run([BINARY, "status", "--socket", socket, "--json"]);
      expect(JSON.parse(json.out).workers).toHaveLength(workers);
      idle.close();
      const none = await run([BINARY, "status", "--socket", join(tmpdir(), "no-such.sock")]);
      expect(none.code).not.toBe(0);
      expect(none.out).toContain("cannot reach the daemon");
    });
  });
}
