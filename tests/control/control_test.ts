import { describe, expect, test } from "bun:test";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { askControl, serveControl } from "../../src/control/control.ts";

describe("the control socket", () => {
  test("answers a request with JSON; the socket is 0600 in a 0700 directory; a stale socket file is replaced", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "qpctl-")), "run");
    const path = join(dir, "control.sock");
    const first = await serveControl(path, async (r) => ({ got: r.cmd }));
    first.close();
    writeFileSync(join(dir, "unrelated"), "");
    const s = await serveControl(path, async (r) => (r.cmd === "boom" ? Promise.reject(new Error("no such thing")) : { got: r.cmd }));
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(await askControl(path, "status")).toEqual({ got: "status" });
      expect(await askControl(path, "boom")).toEqual({ error: "no such thing" });
    } finally {
      s.close();
    }
  });

  test("garbage gets an error; an oversized request is dropped; nothing there is a clear error", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "qpctl-")), "control.sock");
    const s = await serveControl(path, async () => ({ ok: true }));
    const raw = (data: string): Promise<string> =>
      new Promise((resolve) => {
        const c = net.connect({ path });
        let out = "";
        c.setEncoding("utf8");
        c.on("data", (d: string) => (out += d));
        c.on("close", () => resolve(out));
        c.on("error", () => resolve(out));
        c.write(data);
      });
    try {
      expect(JSON.parse(await raw("not json\n"))).toEqual({ error: "the request is not JSON" });
      expect(await raw("x".repeat(10_000))).toBe("");
    } finally {
      s.close();
    }
    await expect(askControl(path, "status", 1000)).rejects.toThrow(`cannot reach the daemon at ${path}`);
  });
});
