/**
 * ident/p0f against Debian's real p0f 3, sniffing loopback: swaks connects over TCP, p0f
 * fingerprints the SYN, and the plugin asks p0f's API socket about the client. p0f down and
 * p0f silent are tested too (the silent one on a FakeClock, through the plugin's time limit).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { p0fQuery, parseP0fResponse } from "../../../plugins/ident/p0f.ts";
import { FakeClock } from "../../../src/testing/fake_clock.ts";
import { TestSession } from "../../../src/testing/harness.ts";
import { swaks } from "../../e2e/helpers.ts";
import { type P0f, p0fSocketPath, startP0f } from "../../helpers/p0f.ts";
import { type RunningServer, startServer } from "../../helpers/server.ts";
import { expectUnknownArgument, loadWarnings } from "../../helpers/plugin_args.ts";

const turns = async (n = 50) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A server with ident/p0f whose queue keeps each message's header. */
async function serve(p0fLine: string, config: Record<string, string> = {}) {
  const headers: string[] = [];
  const server = await startServer({
    plugins: [p0fLine, "rcpt_ok", "keep"],
    config: { rcpthosts: "example.org", ...config },
    modules: {
      keep: {
        hook_queue: (txn) => {
          headers.push(txn.header()?.as_string() ?? "");
          return [OK, "kept"];
        },
      },
    },
  });
  return { server, headers };
}

describe("ident/p0f with a real p0f", () => {
  let p0f: P0f;
  let running: RunningServer;
  let headers: string[];
  const socket = p0fSocketPath();
  beforeAll(async () => {
    ({ server: running, headers } = await serve(`ident/p0f ${socket}`));
    p0f = await startP0f(running.port, socket);
  });
  afterAll(async () => {
    await running.stop();
    await p0f.stop();
  });

  test("fingerprints a TCP client and heads the message with X-P0F-Genre (and X-P0F-Link-Type when p0f knows it)", async () => {
    const r = await swaks(running.port, "--to", "user@example.org", "--from", "a@example.net");
    expect(r.out).toContain("250 2.0.0 kept");
    expect(p0f.output()).toContain("(syn)");
    expect(headers).toHaveLength(1);
    // The loopback SYN of this Linux host, as p0f's database names it.
    expect(headers[0]).toMatch(/^(X-P0F-Link-Type: .+\n)?X-P0F-Genre: Linux [^\n]+\n/);
  });

  test("the note has p0f 3's fields and qpsmtpd's genre; smite_os costs karma", async () => {
    // p0f has seen 127.0.0.1 above; an in-process session from that address asks about it.
    const t = await TestSession.start({ plugins: [`ident/p0f ${socket} smite_os ^linux`] });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    const note = t.connection.notes("p0f");
    expect(note?.os_name).toBe("Linux");
    expect(note?.genre).toBe(`Linux ${note?.os_flavor}`.trim());
    expect(note?.total_conn).toBeGreaterThan(0);
    expect(t.connection.notes("karma")).toBe(-1);
  });

  test("p0f_blocked_operating_systems refuses at RCPT, relay clients excepted", async () => {
    const config = { p0f_blocked_operating_systems: ["Windows XP", "/^linux/"] };
    const t = await TestSession.start({ plugins: [`ident/p0f ${socket}`, "rcpt_ok"], config: { ...config, rcpthosts: "example.org" } });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(await t.command("RCPT TO:<b@example.org>")).toMatchObject({ code: 550, text: "OS Blocked" });
    const relay = await TestSession.start({ plugins: [`ident/p0f ${socket}`, "rcpt_ok"], config: { ...config, rcpthosts: "example.org" } });
    relay.connection.relay_client(true);
    await relay.command("EHLO c");
    await relay.command("MAIL FROM:<a@example.net>");
    expect((await relay.command("RCPT TO:<b@example.org>")).code).toBe(250);
  });

  test("a client p0f never saw: asked again, then no note", async () => {
    const t = await TestSession.start({ plugins: [`ident/p0f ${socket}`], remoteIp: "192.0.2.44" });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    expect(t.connection.notes("p0f")).toBeUndefined();
    expect(t.logs.some((l) => l.message === "skip, no match")).toBe(true);
  });

  test("qpsmtpd check's probe passes against the live socket", async () => {
    const mod = await import("../../../plugins/ident/p0f.ts");
    const warnings = await mod.check!.call({ data: { socket }, signal: new AbortController().signal } as never, undefined as never);
    expect(warnings).toEqual([]);
  });
});

describe("ident/p0f when p0f fails", () => {
  test("no socket: logged, no note, mail goes on", async () => {
    const missing = join(mkdtempSync(join(tmpdir(), "qpp0f-")), "none.sock");
    const t = await TestSession.start({ plugins: [`ident/p0f ${missing}`] });
    await t.command("EHLO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    expect(t.connection.notes("p0f")).toBeUndefined();
    expect(t.logs.some((l) => l.level === 3 && /skip, .*ENOENT/.test(l.message))).toBe(true);
    const mod = await import("../../../plugins/ident/p0f.ts");
    const w = await mod.check!.call({ data: { socket: missing }, signal: new AbortController().signal } as never, undefined as never);
    expect(w[0]).toContain(`p0f's API socket ${missing} does not answer`);
  });

  test("a p0f that never answers holds MAIL only until the plugin's time limit", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "qpp0f-")), "silent.sock");
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(path, r));
    try {
      const clock = new FakeClock();
      const t = await TestSession.start({ clock, plugins: [`ident/p0f ${path} timeout 2`] });
      await t.command("EHLO c");
      let answered = false;
      const mail = t.command("MAIL FROM:<a@example.net>").finally(() => (answered = true));
      await turns();
      await clock.advance(1999);
      await turns();
      expect(answered).toBe(false);
      await clock.advance(1);
      expect((await mail).code).toBe(250);
      expect(t.connection.notes("p0f")).toBeUndefined();
      expect(t.logs.some((l) => l.message.includes("did not answer"))).toBe(true);
    } finally {
      silent.close();
    }
  });

  test("p0f 2 and a missing socket path are refused at start-up", async () => {
    expect(TestSession.start({ plugins: ["ident/p0f"] })).rejects.toThrow("needs the path of p0f's API socket");
    expect(TestSession.start({ plugins: ["ident/p0f /tmp/x.sock version 2"] })).rejects.toThrow("only p0f 3's API");
  });
});

describe("ident/p0f's wire format", () => {
  test("queries carry p0f 3's magic and the address; answers decode by p0f's struct", () => {
    expect(p0fQuery("192.0.2.1")!.toString("hex")).toBe("01463050" + "04" + "c0000201" + "00".repeat(12));
    expect(p0fQuery("2001:db8::1")!.subarray(4).toString("hex")).toBe("06" + "20010db8" + "00".repeat(11) + "01");
    expect(p0fQuery("not an ip")).toBeUndefined();
    const b = Buffer.alloc(232);
    b.writeUInt32LE(0x50304602, 0);
    b.writeUInt32LE(0x10, 4);
    b.writeInt16LE(7, 36);
    b.write("Windows", 40);
    b.write("7 or 8", 72);
    b.write("Ethernet or modem", 168);
    expect(parseP0fResponse(b)).toMatchObject({
      status: 0x10,
      distance: 7,
      os_name: "Windows",
      os_flavor: "7 or 8",
      link_type: "Ethernet or modem",
    });
    b.writeUInt32LE(1, 0);
    expect(() => parseP0fResponse(b)).toThrow("bad response magic");
  });
});

describe("ident/p0f: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("ident/p0f /run/p0f.sock smiteos windows", "smiteos");
    await expectUnknownArgument("ident/p0f /run/p0f.sock /run/p0f2.sock", "/run/p0f2.sock");
  });
  test("qpsmtpd's local_ip loads and says once that it has no effect", async () => {
    const { log } = await loadWarnings("ident/p0f /run/p0f.sock local_ip 192.0.2.1");
    expect(log.match(/ident::p0f: local_ip 192\.0\.2\.1 has no effect/g)).toHaveLength(1);
  });
});
