/**
 * Workers (node:cluster) in dist/qpsmtpd, over real sockets: the workers share the port and
 * each serves; `-c` and `-m` are global; pre-connection hooks see every worker's sessions;
 * SIGHUP reloads every worker, SIGTERM drains every worker; a killed worker is replaced; `-u`;
 * the pid file; `--workers 1` is one process. A small plugin answers HELP with the pid of the
 * worker that serves the connection and logs what pre-connection sees.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, configDir, type Daemon, EXAMPLE_PLUGINS, freePort, RawClient, startDaemon, swaks } from "./helpers.ts";

/**
 * Connections to open before each worker has taken one: which worker accepts is the kernel's
 * choice, and one may win dozens of times running (a run here needed more than the 30 tried before).
 */
const TRIES = 300;
const running: Daemon[] = [];
const copies: string[] = [];
afterAll(() => {
  for (const d of running) d.proc.kill("SIGKILL");
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/**
 * The executable copied into a directory of its own that every user may enter: with `-u`, the
 * primary starts replacement workers as that user, and a clone of this repository may sit in a
 * directory only root can enter (mktemp -d makes them 0700).
 */
function binaryForAnyone(): { bin: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "qpbin-"));
  copies.push(dir);
  chmodSync(dir, 0o755);
  const bin = join(dir, "qpsmtpd");
  copyFileSync(BINARY, bin);
  chmodSync(bin, 0o755);
  return { bin, dir };
}

const WHO = `import { DECLINED, type Hooks, LOGNOTICE, OK } from "qpsmtpd";
export const hook_pre_connection: Hooks["pre-connection"] = function (_txn, info) {
  this.log(LOGNOTICE, \`pre-connection from \${info.remote_ip}: child_addrs \${info.child_addrs.length}\`);
  return DECLINED;
};
export const hook_help: Hooks["help"] = function () {
  return [OK, \`pid \${process.pid}\`];
};
`;

/** A config dir everyone can read (the workers may run as nobody), a Maildir everyone can write. */
function workersConfig(plugins: string[], extra: Record<string, string> = {}): { dir: string; maildir: string } {
  const pluginDir = mkdtempSync(join(tmpdir(), "qpwho-"));
  writeFileSync(join(pluginDir, "who.ts"), WHO);
  chmodSync(pluginDir, 0o755);
  const maildir = join(mkdtempSync(join(tmpdir(), "qpwmd-")), "Maildir");
  mkdirSync(maildir);
  chmodSync(join(maildir, ".."), 0o755);
  chmodSync(maildir, 0o777);
  const dir = configDir({
    me: "mx.example.org\n",
    rcpthosts: "example.org\n",
    plugin_dirs: `${pluginDir}\n${EXAMPLE_PLUGINS}\n`,
    plugins: ["who", ...plugins, `queue/maildir ${maildir}`].join("\n") + "\n",
    logging: "logging/warn LOGINFO\n",
    ...extra,
  });
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  return { dir, maildir };
}

async function daemon(dir: string, args: string[], port?: number, bin?: string): Promise<Daemon> {
  const d = await startDaemon(dir, { args, ...(port ? { port } : {}), ...(bin ? { cmd: [bin] } : {}) });
  running.push(d);
  return d;
}

/** The pids of a process's children (the workers of a primary). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const uidOf = (pid: number): string => /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));

/** Waits until `check` holds (the daemon's log, a process gone); fails after `ms`. */
async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

/** The workers' pids from their "serving" lines, by worker number (the latest for each). */
function servingPids(d: Daemon): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of d.stderr().matchAll(/\(server\) worker (\d+) \(pid (\d+)\) serving/g)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

/** A connection from `from` (any 127.x address): its greeting, then HELO's answer names the worker. */
class Client {
  readonly raw: RawClient;
  greeting = 0;
  pid = 0;

  private constructor(raw: RawClient) {
    this.raw = raw;
  }

  static async open(port: number): Promise<Client> {
    const raw = await RawClient.connect(port);
    const c = new Client(raw);
    c.greeting = (await raw.reply()).code;
    if (c.greeting === 220) {
      await raw.command("HELO client.example");
      c.pid = Number(/pid (\d+)/.exec((await raw.command("HELP")).text)?.[1] ?? 0);
    }
    return c;
  }

  close(): void {
    this.raw.close();
  }
}

/** The greeting's code for a connection from another loopback address (another client for -m). */
function greetingFrom(port: number, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", localAddress: from });
    s.once("data", (d) => {
      resolve(Number(String(d).slice(0, 3)));
      s.destroy();
    });
    s.once("error", reject);
  });
}

/** The pids that logged a line matching `what` (each line starts with its pid). */
function loggedBy(d: Daemon, what: RegExp): Set<number> {
  const pids = new Set<number>();
  for (const line of d.stderr().split("\n")) if (what.test(line)) pids.add(Number(line.split(" ")[0]));
  return pids;
}

describe("--workers 2 (dist/qpsmtpd)", () => {
  test(
    "two workers share the port and both serve; -c 3 is global; pre-connection sees every worker's sessions; SIGHUP reloads each; a killed worker is replaced; SIGTERM drains",
    async () => {
      const { dir, maildir } = workersConfig(["rcpt_ok"]);
      const pidDir = mkdtempSync(join(tmpdir(), "qpwpid-"));
      const pidFile = join(pidDir, "qpsmtpd.pid");
      const d = await daemon(dir, ["--workers", "2", "-c", "3", "-m", "10", "--pid-file", pidFile]);
      const line = `listening on 127.0.0.1:${d.port} (2 workers, primary pid ${d.proc.pid})`;
      await until("the primary's line and both workers'", () => d.stderr().includes(line) && servingPids(d).size === 2);
      const workers = [...servingPids(d).values()];
      expect(workers.length).toBe(2);
      expect(readFileSync(pidFile, "utf8").trim()).toBe(String(d.proc.pid));
      expect(children(d.proc.pid).sort()).toEqual([...workers].sort());

      // Mail, and both workers take connections.
      const r = await swaks(d.port, "--to", "user@example.org", "--from", "a@example.net", "--header", "Subject: by a worker");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/<- {2}250 2\.0\.0 Queued!/);
      expect(readdirSync(join(maildir, "new")).length).toBe(1);
      const served = new Set<number>();
      for (let i = 0; i < TRIES && served.size < 2; i++) {
        const c = await Client.open(d.port);
        served.add(c.pid);
        c.close();
      }
      expect([...served].sort()).toEqual([...workers].sort());

      // -c 3 across both: three held, then every new connection is refused, by either worker.
      await Bun.sleep(200); // the probes above are closed and counted out
      const held = [await Client.open(d.port), await Client.open(d.port), await Client.open(d.port)];
      expect(held.map((c) => c.greeting)).toEqual([220, 220, 220]);
      for (let i = 0; i < TRIES && loggedBy(d, /too many connections \(3\), refusing/).size < 2; i++) {
        const c = await Client.open(d.port);
        expect(c.greeting).toBe(421);
        c.close();
      }
      // Each worker refused, holding at most two of the three itself: the count is the cluster's.
      expect([...loggedBy(d, /too many connections \(3\), refusing 127\.0\.0\.1/)].sort()).toEqual([...workers].sort());

      // pre-connection's child_addrs: every worker's sessions, not only its own.
      held.pop()!.close();
      await Bun.sleep(200);
      const mixed = held.map((c) => c.pid);
      let seen = "";
      for (let i = 0; i < 40 && !seen; i++) {
        const c = await Client.open(d.port);
        expect(c.greeting).toBe(220);
        // A connection whose worker does not hold both held ones proves the count is global.
        if (mixed.some((p) => p !== c.pid)) {
          await until("its pre-connection line", () => d.stderr().includes(`${c.pid} (pre-connection) who: pre-connection`));
          const lines = d.stderr().split("\n").filter((l) => l.startsWith(`${c.pid} (pre-connection) who:`));
          seen = lines.at(-1)!;
        }
        c.close();
        await Bun.sleep(100);
      }
      expect(seen).toContain("child_addrs 2");
      for (const c of held) c.close();

      // SIGHUP: every worker loads the edited plugin list.
      const plugins = readFileSync(join(dir, "plugins"), "utf8");
      writeFileSync(join(dir, "plugins"), `deny_bob\n${plugins}`);
      d.proc.kill("SIGHUP");
      await until("both workers reloaded", () => loggedBy(d, /\(server\) reloaded: \d+ plugins/).size === 2);
      const denied = new Set<number>();
      for (let i = 0; i < TRIES && denied.size < 2; i++) {
        const c = await Client.open(d.port);
        await c.raw.command("MAIL FROM:<a@example.net>");
        expect(await c.raw.command("RCPT TO:<bob@example.org>")).toEqual({ code: 550, text: "no mail for bob" });
        denied.add(c.pid);
        c.close();
      }
      expect(denied.size).toBe(2);

      // kill -9 of a worker: logged, replaced, and the replacement serves.
      const victim = workers[0]!;
      process.kill(victim, "SIGKILL");
      await until("the replacement", () => servingPids(d).size === 2 && ![...servingPids(d).values()].includes(victim));
      expect(d.stderr()).toMatch(new RegExp(`primary: worker \\d \\(pid ${victim}\\) was killed by SIGKILL; starting a new one`));
      const now = [...servingPids(d).values()];
      expect(children(d.proc.pid).sort()).toEqual([...now].sort());
      const after = new Set<number>();
      for (let i = 0; i < TRIES && after.size < 2; i++) {
        const c = await Client.open(d.port);
        after.add(c.pid);
        c.close();
      }
      expect([...after].sort()).toEqual([...now].sort());

      // SIGTERM: the open transaction finishes on its worker, the idle connections get 421, all exit.
      const busy = await Client.open(d.port);
      await busy.raw.command("MAIL FROM:<a@example.net>");
      await busy.raw.command("RCPT TO:<user@example.org>");
      expect((await busy.raw.command("DATA")).code).toBe(354);
      const idle = await Client.open(d.port);
      d.proc.kill("SIGTERM");
      expect((await idle.raw.reply()).code).toBe(421);
      busy.raw.write("Subject: during shutdown\r\n\r\nstill delivered\r\n.\r\n");
      expect((await busy.raw.reply()).code).toBe(250);
      expect((await busy.raw.reply()).code).toBe(421);
      expect(await d.proc.exited).toBe(0);
      expect(readdirSync(join(maildir, "new")).length).toBe(2);
      expect(now.filter(alive)).toEqual([]);
      expect(existsSync(pidFile)).toBe(false);
    },
    60_000,
  );

  test("-m 1 is global (workers: 2 in smtpd.yaml); another address still gets in", async () => {
    const { dir } = workersConfig(["rcpt_ok"], { "smtpd.yaml": "workers: 2\n" });
    const d = await daemon(dir, ["-m", "1"]);
    await until("two workers serving", () => servingPids(d).size === 2);
    await Bun.sleep(200); // the start-up probe's connection is closed and counted out
    const first = await Client.open(d.port);
    expect(first.greeting).toBe(220);
    for (let i = 0; i < TRIES && loggedBy(d, /too many connections from 127\.0\.0\.1 \(1\)/).size < 2; i++) {
      const c = await Client.open(d.port);
      expect(c.greeting).toBe(421);
      expect(c.raw.closed || (await c.raw.reply()).code === 0).toBe(true);
      c.close();
    }
    expect([...loggedBy(d, /too many connections from 127\.0\.0\.1 \(1\)/)].sort()).toEqual([...servingPids(d).values()].sort());
    expect(await greetingFrom(d.port, "127.0.0.2")).toBe(220);
    first.close();
    let again = 0;
    for (let i = 0; i < 40 && again !== 220; i++) {
      await Bun.sleep(50);
      const c = await Client.open(d.port);
      again = c.greeting;
      c.close();
    }
    expect(again).toBe(220);
  }, 30_000);

  test("-u nobody: the primary binds as root, then every process is nobody; a replacement still gets port 25's socket", async () => {
    if (process.getuid?.() !== 0) return; // needs root to switch users
    const nobody = /^nobody:[^:]*:(\d+)/m.exec(readFileSync("/etc/passwd", "utf8"))![1]!;
    const { dir } = workersConfig(["rcpt_ok"]);
    // A privileged port: only root can bind it, and a replacement worker (nobody) is given it.
    let low = 0;
    for (let p = 700 + Math.floor(Math.random() * 200); !low; p++) {
      low = await new Promise<number>((res) => {
        const s = net.createServer();
        s.once("error", () => res(0));
        s.listen(p, "127.0.0.1", () => s.close(() => res(p)));
      });
    }
    const d = await daemon(dir, ["--workers", "2", "-u", "nobody"], low, binaryForAnyone().bin);
    await until("two workers serving", () => servingPids(d).size === 2 && d.stderr().includes("listening on"));
    expect([...servingPids(d).values()].map(uidOf)).toEqual([nobody, nobody]);
    await until("the primary's switch", () => uidOf(d.proc.pid) === nobody, 2000);
    const victim = servingPids(d).get(1)!;
    process.kill(victim, "SIGKILL");
    await until("the replacement", () => servingPids(d).get(1) !== undefined && servingPids(d).get(1) !== victim);
    expect(uidOf(servingPids(d).get(1)!)).toBe(nobody);
    const served = new Set<number>();
    for (let i = 0; i < TRIES && served.size < 2; i++) {
      const c = await Client.open(d.port);
      served.add(c.pid);
      c.close();
    }
    expect([...served].sort()).toEqual([...servingPids(d).values()].sort());
    expect((await swaks(d.port, "--to", "user@example.org")).code).toBe(0);
    expect(await d.stop()).toBe(0);
  }, 30_000);

  test("-u nobody: a replacement the user cannot start is logged and tried again, and serves once it can", async () => {
    if (process.getuid?.() !== 0) return; // needs root to switch users
    const { dir } = workersConfig(["rcpt_ok"]);
    const copy = binaryForAnyone();
    const d = await daemon(dir, ["--workers", "2", "-u", "nobody"], undefined, copy.bin);
    await until("two workers serving", () => servingPids(d).size === 2 && d.stderr().includes("listening on"));
    const victim = servingPids(d).get(1)!;
    chmodSync(copy.dir, 0o700); // nobody may no longer run the executable
    process.kill(victim, "SIGKILL");
    await until(
      "the failed start, logged",
      () => /worker 1 could not be started \(.*EACCES.*\); starting a new one in \d+ ms/.test(d.stderr()),
    );
    chmodSync(copy.dir, 0o755);
    await until("the replacement", () => servingPids(d).get(1) !== undefined && servingPids(d).get(1) !== victim);
    expect((await swaks(d.port, "--to", "user@example.org")).code).toBe(0);
    expect(await d.stop()).toBe(0);
  }, 30_000);

  test("a worker serves as soon as it listens: the first 220 does not wait for the slower worker", async () => {
    // The first worker to load this plugin takes the mark; the other's init takes 3 s.
    const mark = join(mkdtempSync(join(tmpdir(), "qpslow-")), "first");
    const pluginDir = mkdtempSync(join(tmpdir(), "qpslowp-"));
    writeFileSync(
      join(pluginDir, "slow_second.ts"),
      `import { closeSync, openSync } from "node:fs";
export function init() {
  try {
    closeSync(openSync(${JSON.stringify(mark)}, "wx"));
  } catch {
    return new Promise((r) => setTimeout(r, 3000));
  }
}
`,
    );
    const { dir } = workersConfig(["slow_second", "rcpt_ok"]);
    writeFileSync(join(dir, "plugin_dirs"), `${pluginDir}\n${readFileSync(join(dir, "plugin_dirs"), "utf8")}`);
    const d = await daemon(dir, ["--workers", "2"]);
    const c = await Client.open(d.port);
    c.close();
    expect(c.greeting).toBe(220);
    // Served while the other worker was still loading its plugins.
    expect([...servingPids(d).values()]).toEqual([c.pid]);
    expect(d.stderr()).not.toContain("listening on");
    await until("both serving, then the primary's line", () => servingPids(d).size === 2 && /listening on .* \(2 workers/.test(d.stderr()));
    expect(await d.stop()).toBe(0);
  }, 30_000);

  test("a worker that cannot start stops the daemon at start-up with its reason, as one process would", async () => {
    const { dir } = workersConfig(["no_such_plugin"]);
    const port = await freePort();
    const p = Bun.spawn([BINARY, "--config", dir, "-l", "127.0.0.1", "-p", String(port), "--workers", "2"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const err = await new Response(p.stderr as ReadableStream).text();
    expect(await p.exited).toBe(1);
    expect(err).toContain("no_such_plugin");
    expect(children(p.pid)).toEqual([]);
  });
});

describe("--workers 2: the ports", () => {
  test("a port something listens on already stops the start (a second qpsmtpd would share it silently)", async () => {
    const other = net.createServer();
    const port = await new Promise<number>((r) => other.listen(0, "127.0.0.1", () => r((other.address() as net.AddressInfo).port)));
    try {
      const { dir } = workersConfig(["rcpt_ok"]);
      const p = Bun.spawn([BINARY, "--config", dir, "-l", "0.0.0.0", "-p", String(port), "--workers", "2"], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const err = await new Response(p.stderr as ReadableStream).text();
      expect(await p.exited).toBe(1);
      expect(err).toContain(`cannot listen: 0.0.0.0:${port}: address in use (127.0.0.1:${port} is listening already)`);
    } finally {
      other.close();
    }
  });

  test("-p 0: one port the kernel chose, shared by every worker", async () => {
    const { dir } = workersConfig(["rcpt_ok"]);
    const p = Bun.spawn([BINARY, "--config", dir, "-l", "127.0.0.1", "-p", "0", "--workers", "2"], { stdout: "pipe", stderr: "pipe" });
    running.push({ port: 0, proc: p, stderr: () => "", stop: async () => (p.kill(), await p.exited) });
    let err = "";
    const reader = (async () => {
      for await (const c of p.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c);
    })();
    await until("the primary's line", () => /listening on 127\.0\.0\.1:(\d+) \(2 workers/.test(err));
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]);
    expect(port).toBeGreaterThan(0);
    const served = new Set<number>();
    for (let i = 0; i < TRIES && served.size < 2; i++) {
      const c = await Client.open(port);
      served.add(c.pid);
      c.close();
    }
    expect(served.size).toBe(2);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    await reader;
  });
});

describe("--workers 1", () => {
  test("one process, no cluster", async () => {
    const { dir } = workersConfig(["rcpt_ok"]);
    const pidDir = mkdtempSync(join(tmpdir(), "qpwpid-"));
    const pidFile = join(pidDir, "qpsmtpd.pid");
    const d = await daemon(dir, ["--workers", "1", "--pid-file", pidFile]);
    const c = await Client.open(d.port);
    expect(c.pid).toBe(d.proc.pid);
    c.close();
    expect(children(d.proc.pid)).toEqual([]);
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(d.proc.pid));
    expect(d.stderr()).not.toContain("worker");
    expect(await d.stop()).toBe(0);
  });
});
