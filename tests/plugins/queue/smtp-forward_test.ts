import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { DENY, DENYSOFT, OK } from "qpsmtpd";
import type { PluginModule } from "qpsmtpd";
import { DotStuffer } from "qpsmtpd";
import { TestSession } from "../../../src/testing/harness.ts";
import { type RunningServer, startServer } from "../../helpers/server.ts";

/** The next hop: a real qpsmtpd server whose recipients decide by local part. */
const received: string[] = [];
const nextHop: PluginModule = {
  hook_rcpt: (
    _t,
    rcpt,
  ) => (rcpt.user.startsWith("perm") ? [DENY, "5.1.1 no such user"] : rcpt.user.startsWith("temp") ? [DENYSOFT, "4.2.0 try later"] : OK),
  hook_data_post: (txn) => (txn.header()?.get("Subject", 0)?.startsWith("reject") ? [DENY, "5.7.1 content refused"] : undefined),
  hook_queue: async (txn) => {
    let s = "";
    for await (const c of txn.message_stream()) s += Buffer.from(c).toString("latin1");
    received.push(s);
    return [OK, "downstream-id-42"];
  },
};

let hop: RunningServer;
beforeAll(async () => {
  hop = await startServer({ plugins: ["nexthop"], modules: { nexthop: nextHop } });
});
afterAll(async () => {
  await hop.stop();
});

async function forward(to: string[], message: string, port = hop.port) {
  const t = await TestSession.start({ plugins: [`queue/smtp-forward 127.0.0.1 ${port}`] });
  t.mockHook("rcpt", () => OK);
  await t.command("EHLO c");
  await t.command("MAIL FROM:<s@example.net>");
  for (const r of to) await t.command(`RCPT TO:${r}`);
  await t.command("DATA");
  return t.data(message);
}

describe("queue/smtp-forward", () => {
  test("relays the message; the next hop's answer is in the 250", async () => {
    received.length = 0;
    const r = await forward(["<a@example.org>", "<b@example.org>"], "Subject: fwd\n\n.leading dot\nline\n");
    expect(r.code).toBe(250);
    expect(r.text).toContain("downstream-id-42");
    expect(received.length).toBe(1);
    expect(received[0]).toContain("Subject: fwd\n\n.leading dot\nline\n");
  });

  test("every recipient refused with 5xx → 552, so the sender bounces", async () => {
    received.length = 0;
    const r = await forward(["<perm1@example.org>", "<perm2@example.org>"], "Subject: x\n\ny\n");
    expect(r.code).toBe(552);
    expect(r.text).toContain("5.1.1 no such user");
    expect(received).toEqual([]);
  });

  test("a 5xx after the data → 552", async () => {
    const r = await forward(["<a@example.org>"], "Subject: reject me\n\ny\n");
    expect(r.code).toBe(552);
    expect(r.text).toContain("content refused");
  });

  test("a 4xx, or some recipients refused → 451 and nothing delivered", async () => {
    received.length = 0;
    expect((await forward(["<temp@example.org>"], "Subject: x\n\ny\n")).code).toBe(451);
    expect((await forward(["<a@example.org>", "<perm@example.org>"], "Subject: x\n\ny\n")).code).toBe(451);
    expect(received).toEqual([]);
  });

  test("an unreachable next hop → 451", async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    expect((await forward(["<a@example.org>"], "Subject: x\n\ny\n", port)).code).toBe(451);
  });
});

describe("DotStuffer", () => {
  test("canonical CRLF, stuffed dots, stray CR replaced, final dot", () => {
    const d = new DotStuffer();
    const out = Buffer.concat([d.push(Buffer.from(".a\nb\r\nc\rd\n.")), d.push(Buffer.from("\n..\n")), d.end()]).toString();
    expect(out).toBe("..a\r\nb\r\nc d\r\n..\r\n...\r\n.\r\n");
    expect(out).not.toMatch(/[^\r]\n|\r[^\n]/);
  });
  test("content without a final newline gets one before the dot", () => {
    const d = new DotStuffer();
    expect(Buffer.concat([d.push(Buffer.from("x")), d.end()]).toString()).toBe("x\r\n.\r\n");
  });
});
