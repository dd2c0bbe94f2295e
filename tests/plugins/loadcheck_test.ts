/** loadcheck: max_load from the uptime program's reading, and cache_time. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../src/testing/harness.ts";
import { RawClient } from "../e2e/helpers.ts";
import { startServer } from "../helpers/server.ts";
import { script } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("loadcheck", () => {
  test("defers connections above max_load, reading the uptime program", async () => {
    const busy = script('echo " 10:00:00 up 3 days,  2 users,  load average: 9.50, 8.00, 7.00"');
    const t = await TestSession.start({ plugins: [`loadcheck max_load 7 uptime ${busy}`] });
    expect(t.greeting?.code).toBe(450);
    expect(t.greeting?.text).toBe("Server load too high (9.5), please try again later");
    expect(t.closed).toBe(true);
    const calm = script('echo "load average: 0.50, 0.40, 0.30"');
    expect((await TestSession.start({ plugins: [`loadcheck max_load 7 uptime ${calm}`] })).greeting?.code).toBe(220);
  });
});

describe("loadcheck arguments", () => {
  test("loadcheck cache_time reuses a reading for later connections", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpup-"));
    const prog = join(dir, "uptime");
    writeFileSync(prog, '#!/bin/sh\ncat "$(dirname "$0")/load"\n');
    chmodSync(prog, 0o755);
    const greet = async (port: number): Promise<number> => {
      const c = await RawClient.connect(port);
      const r = await c.reply();
      c.close();
      return r.code;
    };
    for (const [cache, second] of [["60", 220], ["0", 450]] as const) {
      writeFileSync(join(dir, "load"), "load average: 0.10\n");
      const s = await startServer({ plugins: [`loadcheck max_load 5 cache_time ${cache} uptime ${prog}`] });
      try {
        expect(await greet(s.port)).toBe(220);
        writeFileSync(join(dir, "load"), "load average: 9.00\n");
        expect(await greet(s.port)).toBe(second);
      } finally {
        await s.stop();
      }
    }
  });
});

describe("loadcheck: unknown arguments", () => {
  test("a misspelt key, or a load that is not a number, stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("loadcheck max_laod 5", "max_laod");
    await expect(TestSession.start({ plugins: ["loadcheck max_load high"] })).rejects.toThrow(
      'loadcheck: max_load is a number, not "high"',
    );
  });
});
