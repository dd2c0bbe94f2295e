import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as diagnostics from "node:diagnostics_channel";
import { completeTracingChannel } from "../../src/runtime/runtime.ts";

const ROOT = resolve(import.meta.dir, "../..");

test("run from source, the built-in plugins import their npm dependencies (mailauth, which requires tldts)", async () => {
  // The executable registers each dependency under its package's name; from source that name
  // must still lead to node_modules, for the loader that imports it and for the packages.
  const dir = mkdtempSync(join(tmpdir(), "qpdeps-"));
  const spec = join(dir, "deps_test.ts");
  writeFileSync(
    spec,
    `import { expect, test, TestSession } from "qpsmtpd/testing";
test("SPF fail is refused at reject 3", async () => {
  const t = await TestSession.start({
    dns: { "example.net": { TXT: ["v=spf1 -all"] } },
    plugins: ["sender_permitted_from reject 3", "rcpt_ok"],
  });
  await t.command("HELO client.example");
  expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(550);
});
`,
  );
  const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "test", spec], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  expect(`${out}${err}`).not.toContain("Maximum call stack size exceeded");
  expect(out).toContain("1 passed, 0 failed");
  expect(await p.exited).toBe(0);
}, 60000);

test("a tracing channel says whether anyone listens (libraries trace every call when it cannot)", () => {
  completeTracingChannel();
  completeTracingChannel(); // twice is once
  const ch = diagnostics.tracingChannel("qpsmtpd-test") as unknown as { hasSubscribers: unknown };
  expect(ch.hasSubscribers).toBe(false);
  // One of the five is enough, as in Node.
  const listener = { asyncEnd: () => undefined } as unknown as diagnostics.TracingChannelSubscribers<object>;
  diagnostics.tracingChannel("qpsmtpd-test").subscribe(listener);
  expect(ch.hasSubscribers).toBe(true);
  diagnostics.tracingChannel("qpsmtpd-test").unsubscribe(listener);
  expect(ch.hasSubscribers).toBe(false);
});
