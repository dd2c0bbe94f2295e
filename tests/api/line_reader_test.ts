/** LineReader: lines from a backend's socket, each within a time limit, bounded. */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { LineReader } from "../../src/api/line_reader.ts";

let server: net.Server | undefined;
afterEach(() => server?.close());

/** A peer that sends `script` (pieces with pauses) and then does nothing; the client side. */
async function peer(script: string[]): Promise<net.Socket> {
  server = net.createServer(async (s) => {
    s.on("error", () => undefined);
    for (const piece of script) {
      s.write(piece);
      await Bun.sleep(5);
    }
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  const c = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise((r) => c.once("connect", r));
  return c;
}

describe("LineReader", () => {
  test("LF lines (a CR before the LF dropped), split across pieces, in order", async () => {
    const r = new LineReader({ timeoutMs: 1000, peer: "p" }, await peer(["one\r\ntw", "o\nthree\n"]));
    expect([await r.next(), await r.next(), await r.next()]).toEqual(["one", "two", "three"]);
    r.close();
  });

  test("with ending CRLF a bare LF stays in the line", async () => {
    const r = new LineReader({ timeoutMs: 1000, peer: "p", ending: "\r\n" }, await peer(["a\nb\r\n"]));
    expect(await r.next()).toBe("a\nb");
    r.close();
  });

  test("a peer that says nothing: the wait ends at the time limit, naming the peer", async () => {
    const r = new LineReader({ timeoutMs: 50, peer: "the test daemon" }, await peer([]));
    await expect(r.next()).rejects.toThrow("timed out waiting for the test daemon");
  });

  test("a line longer than maxLine ends the connection", async () => {
    const r = new LineReader({ timeoutMs: 1000, peer: "p", maxLine: 16 }, await peer(["x".repeat(40)]));
    await expect(r.next()).rejects.toThrow("answer line too long");
  });

  test("detach refuses when the peer sent more than was read (an injection before a TLS upgrade)", async () => {
    const r = new LineReader({ timeoutMs: 1000, peer: "the server" }, await peer(["ok\ninjected\n"]));
    expect(await r.next()).toBe("ok");
    await Bun.sleep(20);
    expect(() => r.detach()).toThrow("the server sent data after its STARTTLS answer");
  });
});
