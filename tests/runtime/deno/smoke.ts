// Deno smoke test: `deno run -A src/main.ts` serves one real delivery through a disk plugin.
// Run by tests/run.sh with `deno test`; not part of the Bun suite.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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

/** A minimal SMTP dialogue: send each line, collect each reply code. */
async function converse(port: number, lines: string[]): Promise<number[]> {
  const sock = net.connect(port, "127.0.0.1");
  let buf = "";
  const codes: number[] = [];
  const next = () =>
    new Promise<number>((res, rej) => {
      const check = () => {
        const m = /^(?:\d{3}-.*\r\n)*(\d{3}) .*\r\n/.exec(buf);
        if (m) {
          buf = buf.slice(m[0].length);
          sock.off("data", onData);
          res(Number(m[1]));
        }
      };
      const onData = (d: Buffer) => {
        buf += d.toString("latin1");
        check();
      };
      sock.on("data", onData);
      sock.once("error", rej);
      check();
    });
  codes.push(await next());
  for (const l of lines) {
    sock.write(l);
    codes.push(await next());
  }
  sock.destroy();
  return codes;
}

Deno.test("the server runs under Deno: one delivery through a disk plugin", async () => {
  const config = mkdtempSync(join(tmpdir(), "qpdeno-"));
  const maildir = join(config, "Maildir");
  writeFileSync(join(config, "rcpthosts"), "example.org\n");
  writeFileSync(join(config, "plugin_dirs"), `${join(ROOT, "examples/plugins")}\n`);
  writeFileSync(join(config, "plugins"), `deny_bob\nrcpt_ok\nqueue/maildir ${maildir}\n`);
  const port = await freePort();
  const deno = join(ROOT, "node_modules/.bin/deno");
  const child = spawn(deno, [
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
  ], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      up = await new Promise<boolean>((res) => {
        const c = net.connect(port, "127.0.0.1");
        c.once("connect", () => (c.destroy(), res(true)));
        c.once("error", () => res(false));
      });
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    assert(up, `server did not start:\n${stderr}`);
    const codes = await converse(port, [
      "EHLO deno.example\r\n",
      "MAIL FROM:<a@example.net>\r\n",
      "RCPT TO:<bob@example.org>\r\n",
      "RCPT TO:<alice@example.org>\r\n",
      "DATA\r\n",
      "Subject: from deno\r\n\r\nhello\r\n.\r\n",
      "QUIT\r\n",
    ]);
    assert(JSON.stringify(codes) === JSON.stringify([220, 250, 250, 550, 250, 354, 250, 221]), `replies ${codes}\n${stderr}`);
    const files = readdirSync(join(maildir, "new"));
    assert(files.length === 1, `expected one message, found ${files.length}`);
    const msg = readFileSync(join(maildir, "new", files[0]!), "utf8");
    assert(msg.includes("Subject: from deno") && msg.includes("Delivered-To: alice@example.org"), msg);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
});
