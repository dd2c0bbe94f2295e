/**
 * queue/exim-bsmtp: hands each message to Exim as batched SMTP on its standard input
 * (`exim -bS`, which `rsmtp` is), as qpsmtpd's exim-bsmtp: `HELO`, `MAIL`, one `RCPT` per
 * recipient, `DATA` with the message dot-stuffed, `QUIT`.
 *
 * Hooks: queue. Config files: none. Notes: none.
 * Arguments (key/value, qpsmtpd's): `exim_path PATH` (`/usr/sbin/rsmtp`; `-bS` is added, as
 * qpsmtpd does); `exim_timeout SECONDS` (30): how long Exim may take; it is killed after that,
 * and when the plugin's own time limit (`plugin_timeout`, `timeout N`) passes. Any other word
 * stops start-up.
 * Installation: the user qpsmtpd runs as must be in Exim's `trusted_users`, or Exim ignores the
 * envelope sender and uses that user's address (qpsmtpd's note). Exim runs no SMTP ACLs for
 * batched input, only `acl_not_smtp`.
 * Replies: Exim says nothing on success (exit 0) → `250 Queued!`. When it refuses, it writes the
 * SMTP reply it would have given on its standard output (e.g. `550 content refused`), and that
 * code is kept: a 5xx → `552 <Exim's text>`, a 4xx → `452 <Exim's text>`.
 * Failure policy: the message is accepted only when Exim exited 0 with no error reply and read
 * it all. Exim missing, exiting otherwise without a reply (no spool space, a crash), killed at
 * the time limit, or stopping mid-message → DECLINED (`451`, or the next queue plugin). The
 * message is streamed from the spool, canonical (CRLF, stray CRs replaced, dots stuffed); Exim's
 * output and error output are read up to 16 kB each.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type Check,
  DECLINED,
  DENY,
  DENYSOFT,
  DotStuffer,
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
  const o = parsePluginArgs("queue/exim-bsmtp", args, { values: ["exim_path", "exim_timeout"] }).values;
  const path = o["exim_path"] ?? "/usr/sbin/rsmtp";
  if (!/^\/[\w/.-]*$/.test(path)) throw new Error(`queue/exim-bsmtp: exim_path must be an absolute path, not "${path}"`);
  const seconds = o["exim_timeout"] ?? "30";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new Error(`queue/exim-bsmtp: bad exim_timeout "${seconds}"`);
  this.data.path = path;
  this.data.timeoutMs = Number(seconds) * 1000;
};

/** The batch: envelope commands, the message as DATA, QUIT. */
async function* batch(me: string, txn: Transaction): AsyncGenerator<Uint8Array> {
  const head = [
    `HELO ${me}`,
    `MAIL FROM:${txn.sender()?.format() ?? "<>"}`,
    ...txn.recipients().map((r) => `RCPT TO:${r.format()}`),
    "DATA",
  ];
  yield Buffer.from(head.map((l) => `${l}\r\n`).join(""));
  const stuff = new DotStuffer();
  for await (const c of txn.message_stream()) yield stuff.push(c);
  yield stuff.end();
  yield Buffer.from("QUIT\r\n");
}

interface Outcome {
  code: number | null;
  signal: string | null;
  writeError: string | undefined;
  /** Exim's standard output (where its error report goes) and error, each bounded. */
  stdout: string;
  stderr: string;
}

function runExim(p: HookContext<Data>, txn: Transaction): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(p.data.path, ["-bS"], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => void (stdout = (stdout + d.toString("latin1")).slice(0, 16_384)));
    child.stderr?.on("data", (d: Buffer) => void (stderr = (stderr + d.toString("latin1")).slice(0, 16_384)));
    const kill = (): void => void child.kill("SIGKILL");
    const timer = setTimeout(kill, p.data.timeoutMs);
    p.signal.addEventListener("abort", kill, { once: true });
    let writeError: string | undefined;
    const writes = pipeline(Readable.from(batch(p.qp.me, txn)), child.stdin!).catch((e: Error) => void (writeError ??= e.message));
    const done = async (code: number | null, signal: string | null): Promise<void> => {
      clearTimeout(timer);
      p.signal.removeEventListener("abort", kill);
      child.stdin?.destroy(); // a writer still waiting on a child that is gone stops here
      await writes;
      resolve({ code, signal, writeError, stdout, stderr });
    };
    child.once("error", (e) => {
      writeError ??= e.message;
      void done(null, null);
    });
    child.once("close", (code, signal) => void done(code, signal));
  });
}

export const hook_queue: Hooks<Data>["queue"] = async function (txn): Promise<Result> {
  const o = await runExim(this, txn);
  // Exim's stylised error report: the SMTP reply first, then where in the batch it happened.
  const reply = /^([45]\d\d)[ -](.*)$/m.exec(o.stdout);
  const said = `${o.stdout}\n${o.stderr}`.trim().replace(/\s*\n\s*/g, " | ");
  const detail = `${this.data.path} -bS ${o.signal ? `killed by ${o.signal}` : `exited ${o.code}`}${said ? `: ${said}` : ""}`;
  if (reply) {
    this.log(LOGERROR, `Exim refused the message: ${detail}`);
    return [reply[1]!.startsWith("5") ? DENY : DENYSOFT, reply[2]!.trim()];
  }
  if (o.code === 0 && !o.signal && o.writeError === undefined) {
    this.log(LOGINFO, `enqueued to Exim via BSMTP`);
    return [OK, "Queued!"];
  }
  const why = o.code === 0 && o.writeError !== undefined ? `Exim stopped reading: ${o.writeError}` : detail;
  this.log(LOGERROR, `BSMTP enqueue failed, the message stays with the sender: ${why}`);
  return DECLINED;
};

/** `qpsmtpd check`: the Exim program exists and may be run. */
export const check: Check<Data> = function () {
  try {
    accessSync(this.data.path, constants.X_OK);
    return [];
  } catch (e) {
    return [`${this.data.path} cannot be run: ${(e as Error).message}`];
  }
};
