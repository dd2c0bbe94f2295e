/**
 * A private Postfix SMTP server (Debian's postfix) as a next hop for the smtp-forward tests: its
 * own config directory, queue and log in a temp dir, `smtpd` listeners on free loopback ports
 * (each may override main.cf with `-o`), STARTTLS with a self-signed certificate made here for
 * `mx.example.org`, and the whole SMTP dialogue in its log (`debug_peer_list`). There is no
 * qmgr, so what a listener accepted stays in the `incoming` queue for the test to read with
 * `postqueue -j` and `postcat` (envelope records included: DSN, SMTPUTF8). Postfix's master must
 * start as root; without root the tests skip. The system's Postfix is never touched.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, isRoot, sharedTempDir, stopPid, waitForListeners } from "./daemons.ts";

const run = promisify(execFile);

export const postfixSmtpdUsable = isRoot;

export interface QueuedMail {
  readonly queue_id: string;
  readonly sender: string;
  readonly recipients: string[];
}

export interface PostfixSmtpdOptions {
  /** One smtpd listener per entry: name → `-o` overrides of main.cf (`["smtputf8_enable=no"]`). */
  readonly listeners: Readonly<Record<string, readonly string[]>>;
  /** More main.cf lines (restrictions, header_checks...); `@DIR@` stands for the instance's directory. */
  readonly main?: string;
  /** Files to write into the directory first (name → content), for the tables `main` names. */
  readonly files?: Readonly<Record<string, string>>;
  /** More server names, each with its own self-signed certificate, presented when a client asks for it by SNI. */
  readonly sniNames?: readonly string[];
}

export interface PostfixSmtpd {
  readonly dir: string;
  /** The certificate the listeners present without SNI (self-signed, `mx.example.org`), PEM. */
  readonly certFile: string;
  /** The certificate of each of `sniNames`. */
  readonly sniCertFiles: Readonly<Record<string, string>>;
  /** Each listener's port, by the name given to `startPostfixSmtpd`. */
  readonly ports: Readonly<Record<string, number>>;
  /** The whole log so far. */
  log(): string;
  /**
   * The smtpd sessions in the log so far, each the text of its lines (after `smtpd[pid]: `) from
   * `connect from` to `disconnect from`, oldest first.
   */
  sessions(): string[][];
  /**
   * Waits for the finished session one of whose lines contains `marker` (a sender address, say)
   * and returns its lines: Postfix logs through postlogd, a moment after the fact.
   */
  session(marker: string, ms?: number): Promise<string[]>;
  /** The messages in the queue (postqueue -j). */
  queue(): Promise<QueuedMail[]>;
  /** Waits until the queue holds at least `n` messages, and returns them. */
  waitForQueue(n: number, ms?: number): Promise<QueuedMail[]>;
  /** A queued message's envelope records, header and body, as `postcat -e -h -b` prints them. */
  content(queueId: string): Promise<string>;
  /** Deletes every queued message (postsuper -d ALL). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** A self-signed certificate and key for `name` in `dir`: `<name>.crt`, `<name>.key`. */
async function selfSigned(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { cert, key };
}

/** Starts Postfix with the listeners of `opts`; stop it with `stop()`. */
export async function startPostfixSmtpd(opts: PostfixSmtpdOptions): Promise<PostfixSmtpd> {
  const { listeners } = opts;
  const dir = sharedTempDir("postfix-smtpd-");
  const etc = join(dir, "etc");
  mkdirSync(etc);
  mkdirSync(join(dir, "spool"));
  mkdirSync(join(dir, "data"));
  chownSync(join(dir, "data"), uid("postfix"), 0);
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  const { cert: certFile, key: keyFile } = await selfSigned(dir, "mx.example.org");
  const sniCertFiles: Record<string, string> = {};
  let sni = "";
  if (opts.sniNames?.length) {
    const lines: string[] = [];
    for (const name of opts.sniNames) {
      const { cert, key } = await selfSigned(dir, name);
      sniCertFiles[name] = cert;
      lines.push(`${name} ${key},${cert}`);
    }
    writeFileSync(join(dir, "sni"), `${lines.join("\n")}\n`);
    sni = `tls_server_sni_maps = hash:${dir}/sni`;
  }
  const ports: Record<string, number> = {};
  for (const name of Object.keys(listeners)) ports[name] = await freePort();
  writeFileSync(
    join(etc, "main.cf"),
    `compatibility_level = 3.6
queue_directory = ${dir}/spool
data_directory = ${dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.org
mydomain = example.org
myorigin = example.org
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
mydestination =
alias_maps =
alias_database =
smtpd_tls_cert_file = ${certFile}
smtpd_tls_key_file = ${keyFile}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_peername_lookup = no
debug_peer_list = 127.0.0.1
debug_peer_level = 1
${sni}
${(opts.main ?? "").replaceAll("@DIR@", dir)}
`,
  );
  if (sni) await run("postmap", ["-c", etc, "-F", `hash:${dir}/sni`]);
  const smtpd = Object.entries(listeners).map(([name, overrides]) =>
    `127.0.0.1:${ports[name]} inet n - n - - smtpd${overrides.map((o) => ` -o ${o}`).join("")}`
  );
  // No qmgr: nothing leaves the incoming queue.
  writeFileSync(
    join(etc, "master.cf"),
    `${smtpd.join("\n")}
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
showq     unix  n       -       n       -       -       showq
proxymap  unix  -       -       n       -       -       proxymap
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
`,
  );
  const logFile = join(dir, "maillog");
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  try {
    await run("postfix", ["-c", etc, "start"]);
  } catch (e) {
    throw new Error(`postfix start failed: ${(e as Error).message}\n${log()}`);
  }
  const pidFile = join(dir, "spool/pid/master.pid");
  const masterPid = (): number | undefined => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : undefined);
  await waitForListeners(Object.values(ports).map((port) => ({ host: "127.0.0.1", port })), "postfix smtpd");
  const queue = async (): Promise<QueuedMail[]> => {
    const { stdout } = await run("postqueue", ["-c", etc, "-j"]);
    return stdout.split("\n").filter((l) => l.trim() !== "").map((l) => {
      const j = JSON.parse(l) as { queue_id: string; sender: string; recipients: Array<{ address: string }> };
      return { queue_id: j.queue_id, sender: j.sender, recipients: j.recipients.map((r) => r.address) };
    });
  };
  const poll = async <T>(what: string, ms: number, get: () => T | Promise<T>, ok: (x: T) => boolean): Promise<T> => {
    const until = Date.now() + ms;
    for (;;) {
      const x = await get();
      if (ok(x)) return x;
      if (Date.now() > until) throw new Error(`postfix: ${what} did not happen within ${ms} ms\n${log().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    dir,
    certFile,
    sniCertFiles,
    ports,
    log,
    sessions: () => sessions(log()),
    session: async (marker, ms = 10_000) =>
      (await poll(
        `a session with "${marker}"`,
        ms,
        () => sessions(log()).find((s) => s.some((l) => l.includes(marker))),
        (s) => s !== undefined,
      ))!,
    queue,
    waitForQueue: (n, ms = 10_000) => poll(`${n} queued message(s)`, ms, queue, (q) => q.length >= n),
    content: async (queueId) => (await run("postcat", ["-c", etc, "-e", "-h", "-b", "-q", queueId])).stdout,
    reset: async () => {
      await run("postsuper", ["-c", etc, "-d", "ALL"]);
    },
    stop: async () => {
      await stopPid(masterPid());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Splits the log into finished smtpd sessions (one smtpd process serves many, one at a time). */
function sessions(log: string): string[][] {
  const open = new Map<string, string[]>();
  const done: string[][] = [];
  for (const line of log.split("\n")) {
    const m = /postfix\/smtpd\[(\d+)\]: (.*)$/.exec(line);
    if (!m) continue;
    const [, pid, text] = m as unknown as [string, string, string];
    if (text.startsWith("connect from ")) open.set(pid, []);
    const s = open.get(pid);
    if (!s) continue;
    s.push(text);
    if (text.startsWith("disconnect from ")) {
      done.push(s);
      open.delete(pid);
    }
  }
  return done;
}

function uid(user: string): number {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(":")[2]);
}
