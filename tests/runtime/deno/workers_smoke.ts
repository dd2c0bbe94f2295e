// Deno check of the workers (node:cluster): `deno run -A src/main.ts --workers 2 -c 2` shares the
// port between two workers that both serve (each answers HELP with its pid, from a small plugin),
// delivers a message, counts -c across the workers, and drains and exits 0 on SIGTERM.
// Run with `deno test -A --no-check --config deno.json tests/runtime/deno/workers_smoke.ts`.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
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

/** A connection that sends lines and reads one reply per line (the greeting first). */
class Conn {
  #buf = "";
  #sock: net.Socket;
  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.on("data", (d: Buffer) => (this.#buf += d.toString("latin1")));
    sock.on("error", () => undefined);
  }
  static async open(port: number): Promise<Conn> {
    const s = net.connect(port, "127.0.0.1");
    await new Promise<void>((r, j) => (s.once("connect", () => r()), s.once("error", j)));
    return new Conn(s);
  }
  async reply(): Promise<string> {
    for (let i = 0; i < 1000; i++) {
      const m = /^(?:\d{3}-.*\r\n)*(\d{3} .*)\r\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[1]!;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no reply: ${JSON.stringify(this.#buf)}`);
  }
  async command(line: string): Promise<string> {
    this.#sock.write(`${line}\r\n`);
    return await this.reply();
  }
  close(): void {
    this.#sock.destroy();
  }
}

Deno.test("workers under Deno: two share the port, both serve, -c is global, SIGTERM drains", async () => {
  const config = mkdtempSync(join(tmpdir(), "qpdeno-workers-"));
  const plugins = join(config, "p");
  mkdirSync(plugins);
  writeFileSync(
    join(plugins, "who.ts"),
    'import { type Hooks, OK } from "qpsmtpd";\nexport const hook_help: Hooks["help"] = () => [OK, `pid ${process.pid}`];\n',
  );
  const maildir = join(config, "Maildir");
  writeFileSync(join(config, "me"), "mx.example.org\n");
  writeFileSync(join(config, "rcpthosts"), "example.org\n");
  writeFileSync(join(config, "plugin_dirs"), `${plugins}\n`);
  writeFileSync(join(config, "plugins"), `who\nrcpt_ok\nqueue/maildir ${maildir}\n`);
  const port = await freePort();
  const deno = join(ROOT, "node_modules/.bin/deno");
  const args = ["run", "-A", "--config", join(ROOT, "deno.json"), join(ROOT, "src/main.ts")];
  // Deno.Command, not node:child_process: Deno's ChildProcess reports a process it sent SIGTERM to
  // as killed by it, even when it exited 0.
  const child = new Deno.Command(deno, {
    args: [...args, "--config", config, "-l", "127.0.0.1", "-p", String(port), "--workers", "2", "-c", "2"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = (async () => {
    for await (const c of child.stderr) stderr += new TextDecoder().decode(c);
  })();
  try {
    for (let i = 0; i < 300 && !/listening on .*\(2 workers/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    assert(/listening on .*\(2 workers/.test(stderr), `the cluster did not start:\n${stderr}`);
    // Both workers take connections.
    const pids = new Set<string>();
    for (let i = 0; i < 40 && pids.size < 2; i++) {
      const c = await Conn.open(port);
      assert((await c.reply()).startsWith("220"), "greeting");
      await c.command("HELO deno.example");
      pids.add(/pid (\d+)/.exec(await c.command("HELP"))![1]!);
      c.close();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert(pids.size === 2, `one worker served every connection: ${[...pids]}\n${stderr}`);
    // -c 2 across both: two held, a third refused.
    await new Promise((r) => setTimeout(r, 200));
    const a = await Conn.open(port);
    const b = await Conn.open(port);
    assert((await a.reply()).startsWith("220") && (await b.reply()).startsWith("220"), "two greetings");
    const third = await Conn.open(port);
    const refused = await third.reply();
    assert(refused.startsWith("421"), `the third of -c 2: ${refused}`);
    third.close();
    // One delivery, left open in DATA while SIGTERM arrives: it finishes, then 421.
    b.close();
    await a.command("HELO deno.example");
    await a.command("MAIL FROM:<a@example.net>");
    await a.command("RCPT TO:<user@example.org>");
    assert((await a.command("DATA")).startsWith("354"), "354");
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    const done = await a.command("Subject: from a Deno worker\r\n\r\nhello\r\n.");
    assert(done.startsWith("250"), `after SIGTERM: ${done}\n${stderr}`);
    assert((await a.reply()).startsWith("421"), "421 after the transaction");
    a.close();
    const status = await child.status;
    await reading;
    assert(status.code === 0 && status.signal === null, `exit ${status.code} ${status.signal}\n${stderr}`);
    assert(readdirSync(join(maildir, "new")).length === 1, "one message delivered");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone already */ }
  }
});
