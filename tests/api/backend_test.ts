/** The backend helpers plugins share: time limits under the engine's, connecting, writing, yes/no. */
import { describe, expect, test } from "bun:test";
import * as net from "node:net";
import { DECLINED, type Init } from "qpsmtpd";
import { abortReason, backendTimeLimitMs, connectBackend, describeBackend, parseYesNo, writeAll } from "../../src/api/backend.ts";
import { TestSession } from "../../src/testing/harness.ts";

describe("backend helpers", () => {
  test("a backend gets a second less than the engine gives the plugin (at least half), 25 s without a limit", () => {
    expect(backendTimeLimitMs(30_000)).toBe(29_000);
    expect(backendTimeLimitMs(1_500)).toBe(750);
    expect(backendTimeLimitMs(0)).toBe(25_000);
  });

  test("the context's timeLimitMs is the engine's limit: the timeout argument, else plugin_timeout", async () => {
    const seen: number[] = [];
    const probe = {
      init: (function () {
        seen.push(this.timeLimitMs);
      }) as Init,
      hook_connect: () => DECLINED,
    };
    await TestSession.start({ modules: { probe }, plugins: ["probe timeout 7", "probe:1"], config: { plugin_timeout: "12" } });
    expect(seen).toEqual([7000, 12000]);
  });

  test("yes/no arguments, and a word that is neither names the plugin and key", () => {
    expect(parseYesNo("p", "k", "Yes", false)).toBe(true);
    expect(parseYesNo("p", "k", "0", true)).toBe(false);
    expect(parseYesNo("p", "k", undefined, true)).toBe(true);
    expect(() => parseYesNo("p", "k", "maybe", true)).toThrow("p: k is yes or no");
  });

  test("connects, writes, and the socket ends when the signal aborts, with the reason", async () => {
    let arrived!: (text: string) => void;
    const got = new Promise<string>((r) => (arrived = r));
    const srv = net.createServer((s) => s.on("data", (d) => arrived(d.toString())));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const stop = new AbortController();
      const s = await connectBackend({ host: "127.0.0.1", port }, 1000, stop.signal);
      await writeAll(s, "hello\n");
      expect(await got).toBe("hello\n");
      const closed = new Promise<Error | undefined>((r) => s.once("error", r).once("close", () => r(undefined)));
      stop.abort(new Error("plugin x did not answer in time"));
      expect((await closed)?.message).toBe("plugin x did not answer in time");
      await expect(writeAll(s, "more")).rejects.toThrow("connection closed");
      expect(describeBackend({ host: "127.0.0.1", port })).toBe(`127.0.0.1:${port}`);
      expect(abortReason(AbortSignal.abort(new DOMException("t", "TimeoutError")), "no answer")).toBe("no answer");
    } finally {
      srv.close();
    }
  });

  test("a refused connection rejects at once; an aborted signal before connecting too", async () => {
    await expect(connectBackend({ path: "/nonexistent/qp.sock" }, 1000, new AbortController().signal)).rejects.toThrow();
    await expect(connectBackend({ host: "127.0.0.1", port: 1 }, 1000, AbortSignal.abort(new Error("gone")))).rejects.toThrow("gone");
  });
});
