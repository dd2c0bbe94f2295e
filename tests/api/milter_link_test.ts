/** MilterLink: milter packets on a socket, the option negotiation, and the limits on each wait. */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { MilterLink } from "../../src/api/milter_link.ts";

let server: net.Server | undefined;
afterEach(() => server?.close());

function packet(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head.write(cmd, 4, "latin1");
  return Buffer.concat([head, data]);
}

/** A milter that answers each packet it gets with `answer(cmd, data)` (raw bytes). */
async function milter(answer: (cmd: string, data: Buffer) => Buffer | undefined): Promise<number> {
  server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on("error", () => undefined);
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const out = answer(String.fromCharCode(buf[4]!), buf.subarray(5, 4 + len));
        buf = buf.subarray(4 + len);
        if (out) s.write(out);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  return (server.address() as net.AddressInfo).port;
}

describe("MilterLink", () => {
  test("negotiates: the milter's version, actions, steps and macros by stage", async () => {
    const port = await milter((cmd) => {
      if (cmd !== "O") return packet("c");
      const o = Buffer.alloc(12);
      o.writeUInt32BE(6, 0);
      o.writeUInt32BE(0x01, 4);
      o.writeUInt32BE(0x10, 8);
      const macros = Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from("{client_addr} j\0")]);
      return packet("O", Buffer.concat([o, macros]));
    });
    const link = await MilterLink.open({ host: "127.0.0.1", port }, 1000, new AbortController().signal);
    const n = await link.negotiate({ version: 6, actions: 0x1ff, protocol: 0x1ff7ff });
    expect([n.version, n.actions, n.protocol]).toEqual([6, 0x01, 0x10]);
    expect(n.macros.get(1)).toEqual(["{client_addr}", "j"]);
    await link.send("H", Buffer.from("client\0"));
    expect((await link.read()).cmd).toBe("c");
    link.close(true);
  });

  test("a milter that wants what was not offered is refused", async () => {
    const port = await milter(() => {
      const o = Buffer.alloc(12);
      o.writeUInt32BE(6, 0);
      o.writeUInt32BE(0x400, 4);
      return packet("O", o);
    });
    const link = await MilterLink.open({ host: "127.0.0.1", port }, 1000, new AbortController().signal);
    await expect(link.negotiate({ version: 6, actions: 0x1ff, protocol: 0 })).rejects.toThrow("the milter wants actions we do not offer");
  });

  test("a silent milter: read gives up after limits.waitMs; a bad packet length closes the link", async () => {
    const silent = await milter(() => undefined);
    const a = await MilterLink.open({ host: "127.0.0.1", port: silent }, 1000, new AbortController().signal);
    a.limits = { signal: new AbortController().signal, waitMs: 50 };
    await expect(a.read()).rejects.toThrow("no answer within the time limit");
    expect(a.alive).toBe(false);
    server!.close();
    const broken = await milter(() => Buffer.from([0, 0, 0, 0]));
    const b = await MilterLink.open({ host: "127.0.0.1", port: broken }, 1000, new AbortController().signal);
    await b.send("A");
    await expect(b.read()).rejects.toThrow("bad packet length 0");
  });
});
