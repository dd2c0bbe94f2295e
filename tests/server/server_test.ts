/**
 * The server in this process over real loopback sockets: what it watches beyond the sessions.
 */
import { afterAll, expect, test } from "bun:test";
import * as net from "node:net";
import type { AnyPluginModule } from "qpsmtpd";
import type { Registry } from "../../src/core/registry.ts";
import { SmtpServer } from "../../src/server/server.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { testRegistry } from "../../src/testing/registry.ts";

const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops) await stop();
});

/** An open server for `registry` on a free loopback port, and a way to connect a client to it. */
async function serve(registry: Registry): Promise<{ srv: SmtpServer; connect(): net.Socket }> {
  const srv = new SmtpServer(registry, { listen: [{ host: "127.0.0.1", port: 0, tls: false }], limitConnections: 10, maxFromIp: 10 });
  const [addr] = await srv.start();
  srv.open();
  stops.push(() => srv.stop(100));
  const connect = (): net.Socket => net.connect(addr!.port, "127.0.0.1").on("error", () => undefined);
  return { srv, connect };
}

/** Waits until `pred` holds, at most 5 s. */
async function until(pred: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

test("a plugin call that holds the event loop is logged with the calls running then", async () => {
  // The connect hook computes for 400 ms in a timer and answers later: the loop is held while the
  // call is running, which no per-call check sees (the call itself returned a promise at once).
  const busy: AnyPluginModule = {
    hook_connect() {
      return new Promise((done) =>
        setTimeout(() => {
          const until = performance.now() + 400;
          while (performance.now() < until) { /* holding the loop */ }
          setTimeout(done, 200);
        }, 20)
      );
    },
  } as unknown as AnyPluginModule;
  const registry = await testRegistry({ plugins: ["busy"], modules: { busy } });
  const logs: string[] = [];
  registry.host.logger.sink = (_level, _hook, _plugin, message) => (logs.push(message), true);
  const sock = (await serve(registry)).connect();
  await until(() => logs.some((l) => l.startsWith("the event loop was held")));
  sock.destroy();
  const line = logs.find((l) => l.startsWith("the event loop was held"));
  expect(line).toMatch(/^the event loop was held for \d+ ms; plugin calls running: busy \(connect\)$/);
  expect(Number(/held for (\d+) ms/.exec(line!)![1])).toBeGreaterThanOrEqual(300);
});

test("the watch ticks only while sessions are open: an idle server sets no timer", async () => {
  const clock = new FakeClock();
  const registry = await testRegistry({ plugins: ["rcpt_ok"], clock });
  const { srv, connect } = await serve(registry);
  expect(clock.pending).toBe(0);
  const session = async (): Promise<void> => {
    const sock = connect();
    let got = "";
    sock.on("data", (d: Buffer) => (got += d.toString("latin1")));
    await until(() => got.startsWith("220"));
    // The session's own read timer, and the watch's tick.
    expect(srv.sessions.size).toBe(1);
    expect(clock.pending).toBe(2);
    sock.end("QUIT\r\n");
    await until(() => srv.sessions.size === 0);
  };
  await session();
  // The tick that finds no session open sets no other: one connection after another share one.
  expect(clock.pending).toBe(1);
  await session();
  expect(clock.pending).toBe(1);
  await clock.advance(100);
  expect(clock.pending).toBe(0);
});
