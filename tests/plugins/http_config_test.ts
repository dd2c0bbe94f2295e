/**
 * http_config against a real HTTP server (Python's http.server on loopback) and a real SMTP
 * listener in this process, whose plugin instance (and so its cache) lives across connections.
 * Time is a FakeClock: the ttl and the time limit of a silent server are moved, not waited.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { SmtpServer } from "../../src/server/server.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { freePort, RawClient } from "../e2e/helpers.ts";
import { type HttpServer, startHttpServer } from "../helpers/http_server.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

interface Running {
  port: number;
  clock: FakeClock;
  logs: string[];
  stop(): Promise<void>;
}

const open: Running[] = [];
afterAll(async () => {
  for (const r of open) await r.stop();
});

/** A listener whose plugins are `http_config LINE` and rcpt_ok (rcpthosts from the files: example.com). */
async function smtp(line: string): Promise<Running> {
  const clock = new FakeClock();
  const registry = await testRegistry({ plugins: [line, "rcpt_ok"], config: { rcpthosts: "example.com" }, clock });
  const logs: string[] = [];
  registry.host.logger.sink = (_level, _hook, plugin, message) => (logs.push(`${plugin}: ${message}`), true);
  const server = new SmtpServer(registry, { listen: [{ host: "127.0.0.1", port: 0, tls: false }], limitConnections: 10, maxFromIp: 10 });
  const [addr] = await server.start();
  server.open();
  const r = { port: addr!.port, clock, logs, stop: () => server.stop(100) };
  open.push(r);
  return r;
}

/** One connection: greeting, then RCPT for each domain; the RCPT codes. */
async function rcpts(port: number, ...domains: string[]): Promise<number[]> {
  const c = await RawClient.connect(port);
  try {
    expect((await c.reply()).code).toBe(220);
    await c.command("HELO client.example");
    await c.command("MAIL FROM:<a@example.net>");
    const out: number[] = [];
    for (const d of domains) out.push((await c.command(`RCPT TO:<user@${d}>`)).code);
    await c.command("QUIT");
    return out;
  } finally {
    c.close();
  }
}

let http: HttpServer;
beforeAll(async () => {
  http = await startHttpServer();
});
afterAll(() => http.stop());

describe("http_config", () => {
  test("a name read once is fetched by the next connection, then served from the cache until ttl", async () => {
    http.put("conf/rcpthosts", "# our domains\nexample.org\n\n");
    const s = await smtp(`http_config http://127.0.0.1:${http.port}/conf/ ttl 300`);
    expect(await rcpts(s.port, "example.org", "example.com")).toEqual([550, 250]); // not fetched yet: the files
    expect(await rcpts(s.port, "example.org", "example.com")).toEqual([250, 550]); // fetched at connect
    http.put("conf/rcpthosts", "example.net\n");
    expect(await rcpts(s.port, "example.org", "example.net")).toEqual([250, 550]); // cached
    await s.clock.advance(300_000);
    expect(await rcpts(s.port, "example.org", "example.net")).toEqual([550, 250]); // stale: fetched again
    expect(s.logs).toContain("http_config: rcpthosts: 1 value(s)");
  });

  test("URL prefixes are tried in order; a name no URL has falls through to the files", async () => {
    http.put("second/rcpthosts", "example.org\n");
    const s = await smtp(`http_config http://127.0.0.1:${http.port}/first/ http://127.0.0.1:${http.port}/second/`);
    await rcpts(s.port, "example.org");
    expect(await rcpts(s.port, "example.org", "example.com")).toEqual([250, 550]);
    expect(s.logs).toContain("http_config: me: 0 value(s)"); // asked for, answered by no URL
  });

  test("a server that is down: the files answer, it is logged, and asked again a minute later at most", async () => {
    const dead = await freePort();
    const s = await smtp(`http_config http://127.0.0.1:${dead}/`);
    expect(await rcpts(s.port, "example.com")).toEqual([250]);
    expect(await rcpts(s.port, "example.com")).toEqual([250]);
    const failures = () => s.logs.filter((l) => l.startsWith("http_config: fetching rcpthosts failed, the files answer")).length;
    expect(failures()).toBe(1);
    await rcpts(s.port, "example.com"); // within the minute: not asked
    expect(failures()).toBe(1);
    await s.clock.advance(60_000);
    await rcpts(s.port, "example.com");
    expect(failures()).toBe(2);
  });

  test("a server that never answers holds one greeting until the plugin's time limit", async () => {
    let asked = 0;
    const silent = net.createServer(() => asked++);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const s = await smtp(`http_config http://127.0.0.1:${port}/ timeout 2`);
      expect(await rcpts(s.port, "example.com")).toEqual([250]); // marks the names
      const c = await RawClient.connect(s.port);
      let greeted = false;
      const greeting = c.reply(5000).finally(() => (greeted = true));
      for (let i = 0; i < 200 && asked === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(asked).toBeGreaterThan(0); // the fetch is waiting on the silent server...
      expect(greeted).toBe(false); // ...and so is the greeting
      await s.clock.advance(2000);
      expect((await greeting).code).toBe(220);
      c.close();
      expect(s.logs.some((l) => l.includes("did not answer"))).toBe(true);
    } finally {
      silent.close();
    }
  });

  test("check() reports a URL that does not answer; bad lines stop start-up", async () => {
    const dead = await freePort();
    const mod = await import("../../plugins/http_config.ts");
    const ctx = (urls: string[]) => ({ data: { urls }, signal: new AbortController().signal }) as never;
    expect(await mod.check!.call(ctx([`http://127.0.0.1:${http.port}/conf/`]), undefined as never)).toEqual([]);
    const w = await mod.check!.call(ctx([`http://127.0.0.1:${dead}/`]), undefined as never);
    expect(w[0]).toStartWith(`http://127.0.0.1:${dead}/ does not answer`);
    expect(TestSession.start({ plugins: ["http_config"] })).rejects.toThrow("needs at least one URL prefix");
    expect(TestSession.start({ plugins: ["http_config http://x/ ttl soon"] })).rejects.toThrow('ttl wants seconds, not "soon"');
  });
});

describe("http_config: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("http_config http://127.0.0.1:1/conf/ tll 60", "tll");
  });
});
