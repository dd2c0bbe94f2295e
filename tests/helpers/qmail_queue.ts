/**
 * A qmail-queue stand-in. Debian 12 has no qmail package and no qmail source can be fetched
 * here, so this small program follows qmail-queue(8) instead: it reads the whole message on
 * descriptor 0, then the envelope on descriptor 1 (`F<sender>\0`, `T<recipient>\0`..., `\0`),
 * checks the envelope's format strictly (exit 91 otherwise, as qmail-queue does), and exits 0
 * after writing both into its queue directory. The test picks other behaviours through the
 * file `mode` there: an exit code, `hang`, `crash` (killed by a signal), or `early N` (stops
 * reading after a few bytes and exits N).
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sharedTempDir } from "./daemons.ts";

const SCRIPT = `#!/usr/bin/python3
import os, re, signal, sys, time
QUEUE = sys.argv[0].rsplit("/", 1)[0] + "/queue"
mode = open(QUEUE + "/mode").read().split() if os.path.exists(QUEUE + "/mode") else ["ok"]

def read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)

if mode[0] == "early":
    os.read(0, 16)
    sys.exit(int(mode[1]))
if mode[0] == "hang":
    while True:
        time.sleep(3600)
message = read_all(0)
envelope = read_all(1)
if not re.fullmatch(rb"F[^\\0]*\\0(T[^\\0]+\\0)+\\0", envelope, re.S):
    sys.exit(91)
if mode[0] == "crash":
    os.kill(os.getpid(), signal.SIGSEGV)
if mode[0] != "ok":
    sys.exit(int(mode[0]))
n = len([f for f in os.listdir(QUEUE) if f.endswith(".msg")])
open(f"{QUEUE}/{n:04d}.msg", "wb").write(message)
open(f"{QUEUE}/{n:04d}.env", "wb").write(envelope)
sys.exit(0)
`;

export interface QmailQueue {
  /** The program's path, for `queue/qmail-queue PATH`. */
  readonly path: string;
  /** What the next runs do: `ok`, an exit code, `hang`, `crash` or `early N`. */
  mode(mode: string): void;
  /** The messages queued so far: message bytes (latin1) and envelope. */
  queued(): Array<{ message: string; envelope: string }>;
  remove(): void;
}

export function qmailQueueStandIn(): QmailQueue {
  const dir = sharedTempDir("qmail-queue-");
  const path = join(dir, "qmail-queue");
  writeFileSync(path, SCRIPT);
  chmodSync(path, 0o755);
  const queue = join(dir, "queue");
  mkdirSync(queue);
  return {
    path,
    mode: (m) => writeFileSync(join(queue, "mode"), m),
    queued: () =>
      readdirSync(queue).filter((f) => f.endsWith(".msg")).sort().map((f) => ({
        message: readFileSync(join(queue, f), "latin1"),
        envelope: existsSync(join(queue, f.replace(".msg", ".env"))) ? readFileSync(join(queue, f.replace(".msg", ".env")), "latin1") : "",
      })),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
