/**
 * queue/qmail-queue: hands each message to qmail's `qmail-queue` program (or a replacement with
 * the same interface: netqmail, notqmail, s/qmail, qmail-scanner, spamdyke...): the message on
 * file descriptor 0, the envelope on descriptor 1 (`F<sender>\0`, `T<recipient>\0` for each
 * recipient, then `\0`), the verdict in the exit code (qmail-queue(8)).
 *
 * Hooks: queue. Config files: none. Notes: none.
 * Arguments: `[PATH]` (qpsmtpd's; default `$QMAIL/bin/qmail-queue`, QMAIL being `/var/qmail`;
 * the environment variable `QMAILQUEUE` overrides both, as in qpsmtpd), then
 * `qmail_timeout SECONDS` (30): how long the program may take; it is killed after that, and when
 * the plugin's own time limit (`plugin_timeout`, `timeout N`) passes. Any other word stops
 * start-up.
 * Replies, from the exit code as qmail-smtpd maps them:
 * - 0 → `250 Queued! <time> qp <pid> <Message-Id>` (qpsmtpd's text);
 * - 11–40, permanent (11 address too long, 31 refused...) → `552` with qmail's text;
 * - 51–81, temporary (51 out of memory, 53 write error, 71 refused for now...) → `452` with
 *   qmail's text, so the sender retries;
 * - anything else (91 envelope format error, a crash, the program missing, killed at the time
 *   limit, or exiting before it read the whole message) → DECLINED (`451`, or the next queue
 *   plugin).
 * Failure policy: the message is accepted only when the program exited 0 after reading all of
 * it. The message is streamed from the spool (as qpsmtpd, LF line ends).
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type Check,
  DECLINED,
  DENY,
  DENYSOFT,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  OK,
  parsePluginArgs,
  type Result,
  type Transaction,
} from "qpsmtpd";

interface Data {
  path: string;
  timeoutMs: number;
}

export const init: Init<Data> = function (_server, ...args) {
  const a = parsePluginArgs("queue/qmail-queue", args, { values: ["qmail_timeout"], positional: [0, args.length], usage: "PATH" });
  // One PATH, absolute: any other word is a mistake (`qmail_timout 5`), named as such.
  const odd = a.positional.find((w, i) => i > 0 || !w.startsWith("/"));
  if (odd !== undefined) throw new Error(`queue/qmail-queue: unknown argument "${odd}" (it takes: PATH, qmail_timeout VALUE)`);
  const given = a.positional[0];
  const seconds = a.values.qmail_timeout ?? "30";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`queue/qmail-queue: bad qmail_timeout "${seconds}"`);
  const path = process.env["QMAILQUEUE"] || given || `${process.env["QMAIL"] || "/var/qmail"}/bin/qmail-queue`;
  // qpsmtpd's rule: an absolute path of plain characters, so nothing odd reaches exec.
  if (!/^\/[\w/.-]*$/.test(path)) throw new Error(`queue/qmail-queue: unexpected characters in "${path}"`);
  this.data.path = path;
  this.data.timeoutMs = Number(seconds) * 1000;
};

/** qmail-smtpd's texts for qmail-queue's exit codes (qmail-queue(8)). */
const EXIT_TEXT: Readonly<Record<number, string>> = {
  11: "envelope address too long for qq (#5.1.3)",
  31: "mail server permanently rejected message (#5.3.0)",
  51: "qq out of memory (#4.3.0)",
  52: "qq timeout (#4.3.0)",
  53: "qq write error or disk full (#4.3.0)",
  54: "qq read error (#4.3.0)",
  55: "qq unable to read configuration (#4.3.0)",
  56: "qq trouble making network connection (#4.3.0)",
  61: "qq trouble in home directory (#4.3.0)",
  62: "qq trouble creating files in queue (#4.3.0)",
  63: "qq trouble creating files in queue (#4.3.0)",
  64: "qq trouble creating files in queue (#4.3.0)",
  65: "qq trouble creating files in queue (#4.3.0)",
  66: "qq trouble creating files in queue (#4.3.0)",
  71: "mail server temporarily rejected message (#4.3.0)",
  72: "connection to mail server timed out (#4.4.2)",
  73: "connection to mail server rejected (#4.4.1)",
  74: "communication with mail server failed (#4.4.2)",
  81: "qq internal bug (#4.3.0)",
};

/** The envelope as qmail-queue reads it on descriptor 1. */
function envelope(txn: Transaction): Buffer {
  const parts = [`F${txn.sender()?.address() ?? ""}\0`, ...txn.recipients().map((r) => `T${r.address()}\0`), "\0"];
  return Buffer.from(parts.join(""), "utf8");
}

interface Outcome {
  pid: number | undefined;
  code: number | null;
  signal: string | null;
  /** Why writing the message or the envelope failed, if it did. */
  writeError: string | undefined;
  stderr: string;
}

/** Runs the program with the message on fd 0 and the envelope on fd 1, within the time limits. */
function runQueue(p: HookContext<Data>, txn: Transaction): Promise<Outcome> {
  return new Promise((resolve) => {
    // Node gives a child's descriptor 1 only as its output: the shell moves our pipe on
    // descriptor 3 there (`1<&3`), then runs the program in its place.
    const child = spawn("/bin/sh", ["-c", 'exec "$0" 1<&3 3<&-', p.data.path], { stdio: ["pipe", "ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(0, 2000)));
    const kill = (): void => void child.kill("SIGKILL");
    const timer = setTimeout(kill, p.data.timeoutMs);
    p.signal.addEventListener("abort", kill, { once: true });
    let writeError: string | undefined;
    const envelopePipe = child.stdio[3] as Writable;
    const writes = Promise.all([
      pipeline(Readable.from(txn.message_stream()), child.stdin!),
      pipeline(Readable.from([envelope(txn)]), envelopePipe),
    ])
      .catch((e: Error) => void (writeError ??= e.message));
    const done = async (code: number | null, signal: string | null): Promise<void> => {
      clearTimeout(timer);
      p.signal.removeEventListener("abort", kill);
      child.stdin?.destroy(); // a writer still waiting on a child that is gone stops here
      envelopePipe.destroy();
      await writes;
      resolve({ pid: child.pid, code, signal, writeError, stderr: stderr.trim() });
    };
    child.once("error", (e) => {
      writeError ??= e.message;
      void done(null, null);
    });
    child.once("close", (code, signal) => void done(code, signal));
  });
}

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const started = Math.floor(this.server.now() / 1000);
  const o = await runQueue(this, txn);
  const code = o.code ?? -1;
  const detail = `${this.data.path} ${o.signal ? `killed by ${o.signal}` : `exited ${code}`}${o.stderr ? `: ${o.stderr}` : ""}`;
  if (code === 0 && !o.signal && o.writeError === undefined) {
    const msgId = (txn.header()?.get("Message-Id", 0) ?? "").replace(/[\r\n].*/s, "").trim();
    this.log(LOGINFO, `queued by ${this.data.path}`);
    return [OK, `Queued! ${started} qp ${o.pid} ${/^<.*>$/.test(msgId) ? msgId : `<${msgId}>`}`];
  }
  if (code >= 11 && code <= 40) {
    this.log(LOGERROR, `permanent failure: ${detail}`);
    return [DENY, EXIT_TEXT[code] ?? `mail server permanently rejected message (#5.3.0)`];
  }
  if (code >= 51 && code <= 81) {
    this.log(LOGERROR, `temporary failure: ${detail}`);
    return [DENYSOFT, EXIT_TEXT[code] ?? `qq temporary problem (#4.3.0)`];
  }
  const why = o.writeError !== undefined && code === 0 ? `it stopped reading: ${o.writeError}` : detail;
  this.log(LOGERROR, `queueing failed, the message stays with the sender: ${why}`);
  return DECLINED;
};

/** `qpsmtpd check`: the program exists and may be run. */
export const check: Check<Data> = function () {
  try {
    accessSync(this.data.path, constants.X_OK);
    return [];
  } catch (e) {
    return [`${this.data.path} cannot be run: ${(e as Error).message}`];
  }
};
