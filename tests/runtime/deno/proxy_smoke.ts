// Deno check of the PROXY listener: `deno run -A src/main.ts` with `proxy_ports` reads a header
// sent one byte at a time, and one with SMTP pipelined behind it, and the session sees the real
// client (the pause/resume and held-bytes path of src/runtime/sockets.ts under Deno's node:net).
// Run with `deno test -A --no-check --config deno.json tests/runtime/deno/proxy_smoke.ts`.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "../../..");

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

async function freePort(): Promise<number> {
  return await new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

/** Writes each piece (awaiting each write), then collects everything until the server closes. */
async function dialogue(port: number, pieces: string[]): Promise<string> {
  const sock = net.connect(port, "127.0.0.1");
  sock.setNoDelay(true);
  let got = "";
  sock.on("data", (d: Buffer) => (got += d.toString("latin1")));
  const closed = new Promise<void>((r) => sock.once("close", () => r()));
  await new Promise<void>((r, j) => (sock.once("connect", () => r()), sock.once("error", j)));
  for (const p of pieces) {
    await new Promise<void>((r) => sock.write(p, () => r()));
    await new Promise((r) => setTimeout(r, 2));
  }
  const timer = setTimeout(() => sock.destroy(), 10_000);
  await closed;
  clearTimeout(timer);
  return got;
}

Deno.test("a PROXY listener under Deno: byte-wise header, pipelined SMTP, the real client", async () => {
  const config = mkdtempSync(join(tmpdir(), "qpdeno-proxy-"));
  const port = await freePort();
  let proxyPort = await freePort();
  while (proxyPort === port) proxyPort = await freePort(); // a closed port may be handed out again
  writeFileSync(join(config, "me"), "mx.example.org\n");
  writeFileSync(join(config, "plugins"), "rcpt_ok\n");
  writeFileSync(join(config, "smtpd.yaml"), `proxy_ports: [${proxyPort}]\nproxy_trusted: [127.0.0.1]\nproxy_timeout: 5\n`);
  const deno = join(ROOT, "node_modules/.bin/deno");
  const child = spawn(
    deno,
    [
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "src/main.ts"),
      "--config",
      config,
      "-l",
      "127.0.0.1",
      "-p",
      String(port),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      up = await new Promise<boolean>((res) => {
        const c = net.connect(proxyPort, "127.0.0.1");
        c.once("connect", () => (c.destroy(), res(true)));
        c.once("error", () => res(false));
      });
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    assert(up, `server did not start:\n${stderr}`);
    const slow = await dialogue(proxyPort, [..."PROXY TCP4 203.0.113.7 192.0.2.25 4000 25\r\n", "HELO a\r\n", "QUIT\r\n"]);
    assert(/^220 .*\r\n250 .*\[203\.0\.113\.7\].*\r\n221 /s.test(slow), `byte-wise: ${JSON.stringify(slow)}\n${stderr}`);
    const piped = await dialogue(proxyPort, ["PROXY TCP6 2001:db8::8 2001:db8::25 4001 25\r\nHELO b\r\nNOOP\r\nQUIT\r\n"]);
    const codes = [...piped.matchAll(/^(\d{3}) /gm)].map((m) => m[1]).join(",");
    assert(codes === "220,250,250,221" && piped.includes("[2001:db8::8]"), `pipelined: ${JSON.stringify(piped)}\n${stderr}`);
    const garbage = await dialogue(proxyPort, ["EHLO x\r\n"]);
    assert(garbage === "", `garbage got ${JSON.stringify(garbage)}`);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
});
