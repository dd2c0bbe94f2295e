/**
 * A private Postfix instance (Debian's postfix) for the postfix-queue tests: its own config
 * directory, queue and data directories in a temp dir, only the services a message needs to
 * reach the queue (cleanup, trivial-rewrite, qmgr, showq, ...) and no delivery agent: every
 * transport is deferred, so what cleanup accepted stays queued for the test to read with
 * `postqueue -j` and `postcat`. No listener on any port. Postfix's master must start as root;
 * without root the tests skip.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { isRoot, sharedTempDir, stopPid, waitForListeners } from "./daemons.ts";

const run = promisify(execFile);

export const postfixUsable = isRoot;

export interface QueuedMessage {
  readonly queue_name: string;
  readonly queue_id: string;
  readonly sender: string;
  readonly recipients: string[];
}

export interface Postfix {
  readonly dir: string;
  /** The cleanup service's unix socket. */
  readonly cleanupSocket: string;
  /** The messages in the queue (postqueue -j). */
  queue(): Promise<QueuedMessage[]>;
  /** A queued message's header and body, as postcat prints them (latin1: bytes as they are). */
  content(queueId: string): Promise<string>;
  /** A queued message's envelope records, as `postcat -e` prints them. */
  envelope(queueId: string): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Postfix; `main` adds main.cf lines (header_checks, milters, size limits...). */
export async function startPostfix(main = ""): Promise<Postfix> {
  const dir = sharedTempDir("postfix-");
  const etc = join(dir, "etc");
  mkdirSync(etc);
  mkdirSync(join(dir, "spool"));
  mkdirSync(join(dir, "data"));
  chownSync(join(dir, "data"), uid("postfix"), 0);
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
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
mydestination =
alias_maps =
alias_database =
# Nothing is delivered: "smtp" is not in master.cf, and deferred anyway.
default_transport = smtp
relay_transport = smtp
defer_transports = smtp
${main}
`,
  );
  // No smtpd (no port) and no delivery agent (nothing leaves the queue).
  writeFileSync(
    join(etc, "master.cf"),
    `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
showq     unix  n       -       n       -       -       showq
proxymap  unix  -       -       n       -       -       proxymap
postlog   unix-dgram n  -       n       -       1       postlogd
qmgr      unix  n       -       n       300     1       qmgr
`,
  );
  const log = (): string => (existsSync(join(dir, "maillog")) ? readFileSync(join(dir, "maillog"), "utf8") : "");
  try {
    await run("postfix", ["-c", etc, "start"]);
  } catch (e) {
    throw new Error(`postfix start failed: ${(e as Error).message}\n${log()}`);
  }
  const cleanupSocket = join(dir, "spool/public/cleanup");
  const pidFile = join(dir, "spool/pid/master.pid");
  const masterPid = (): number | undefined => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : undefined);
  await waitForListeners([{ path: cleanupSocket }], "postfix cleanup");
  return {
    dir,
    cleanupSocket,
    queue: async () => {
      const { stdout } = await run("postqueue", ["-c", etc, "-j"]);
      return stdout.split("\n").filter((l) => l.trim() !== "").map((l) => {
        const j = JSON.parse(l) as { queue_name: string; queue_id: string; sender: string; recipients: Array<{ address: string }> };
        return { queue_name: j.queue_name, queue_id: j.queue_id, sender: j.sender, recipients: j.recipients.map((r) => r.address) };
      });
    },
    envelope: async (queueId) => (await run("postcat", ["-c", etc, "-e", "-q", queueId])).stdout,
    content: async (queueId) => (await run("postcat", ["-c", etc, "-h", "-b", "-q", queueId], { encoding: "latin1" })).stdout,
    log,
    stop: async () => {
      await stopPid(masterPid());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function uid(user: string): number {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(":")[2]);
}
