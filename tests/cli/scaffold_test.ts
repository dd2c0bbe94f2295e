import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { scaffold } from "../../src/cli/scaffold.ts";

test("new-plugin writes a plugin and a test that passes as written (qpsmtpd test, from source)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qpscaf-"));
  const [plugin, spec] = scaffold("no_nobody", dir);
  expect(plugin).toBe(join(dir, "no_nobody.ts"));
  expect(() => scaffold("no_nobody", dir)).toThrow("not overwriting");
  const root = resolve(import.meta.dir, "../..");
  const p = Bun.spawn([process.execPath, join(root, "src/main.ts"), "test", spec!], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  expect(await p.exited).toBe(0);
  expect(out).toContain("ok   no_nobody refuses nobody and leaves the rest to rcpt_ok");
  expect(out).toContain("1 passed, 0 failed");
});
