import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { scaffold } from "../src/scaffold.ts";

test("new-plugin writes a plugin and a test that passes as written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qpscaf-"));
  const [plugin, spec] = scaffold("no_nobody", dir);
  expect(plugin).toBe(join(dir, "no_nobody.ts"));
  expect(() => scaffold("no_nobody", dir)).toThrow("not overwriting");
  const p = Bun.spawn([process.execPath, "test", spec!], { cwd: resolve(import.meta.dir, ".."), stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stderr).text();
  expect(await p.exited).toBe(0);
  expect(out).toContain("1 pass");
});
