/**
 * virus/clamav: scans each message with ClamAV's command-line scanner (`clamscan`, or
 * `clamdscan`, which hands the file to a running clamd) and tags or refuses viruses.
 *
 * The scanner runs without a shell, on the spool file (`body_filename()`: the original header and
 * the body), with a time limit; it is killed when the limit passes. `clamscan` loads the whole
 * signature database for every message (20 s and more with the full database): with a clamd
 * running, point `clamscan_path` at `clamdscan`, or use virus/clamdscan.
 *
 * Hooks: data_post.
 * Arguments (qpsmtpd's, written `name=value` as qpsmtpd, or `name value`; a first argument that
 * is an absolute path is `clamscan_path`):
 *  - `clamscan_path=PATH` (default `/usr/bin/clamscan`);
 *  - `clamd_conf=PATH` (default `/etc/clamav/clamd.conf`): given to `clamdscan` as
 *    `--config-file` (clamscan has no such option);
 *  - `action=add-header|reject` (default add-header): an infected message gets `X-Virus-Found:
 *    Yes` and `X-Virus-Details: NAME`, or is refused;
 *  - `max_size=BYTES` (default 524288): larger messages are not scanned (logged at LOGWARN);
 *  - `tmp_dir=PATH`: the directory whose group/other access the spool file copies, so a scanner
 *    running as another user can read it (default the spool dir); it must exist;
 *  - `declined_on_fail`: see the failure policy; `back_compat` is accepted and ignored (it added
 *    options ClamAV 1.x no longer has);
 *  - ours: `database=PATH` (`--database` for clamscan: a directory or file of signatures),
 *    `scan_timeout=S` (default one second less than the plugin's time limit).
 * Header fields: clean mail gets `X-Virus-Checked: Checked by ClamAV on ME`.
 * Notes: transaction `virus` and `virus_flag`, as virus/clamdscan.
 * Replies: `552 Virus Found: NAME` with `action=reject`.
 * Failure policy (qpsmtpd's): the scanner missing, failing (exit code other than 0 or 1), killed,
 * or past its time limit → logged at LOGERROR and `451 4.3.0` so the sender retries; with
 * `declined_on_fail` the message goes on unscanned (DECLINED).
 */
import { spawn } from "node:child_process";
import { accessSync, chmodSync, constants, statSync } from "node:fs";
import { basename } from "node:path";
import {
  backendTimeLimitMs,
  type Check,
  DECLINED,
  DENY,
  DONE,
  type HookContext,
  type Hooks,
  type Init,
  LOGERROR,
  LOGINFO,
  LOGWARN,
  parsePluginArgs,
  type Result,
} from "qpsmtpd";

interface Data {
  path: string;
  clamdConf: string;
  database: string | undefined;
  reject: boolean;
  maxBytes: number;
  tmpDir: string | undefined;
  declinedOnFail: boolean;
  scanMs: number;
}

/** What we keep of the scanner's output. */
const MAX_OUTPUT = 64 * 1024;
const PATH = /^\/[\w/.-]*$/;

const VALUES = ["clamscan_path", "clamd_conf", "action", "max_size", "tmp_dir", "database", "scan_timeout"] as const;

export const init: Init<Data> = function (_server, ...args) {
  // qpsmtpd writes `name=value`; `name value` works too.
  const words = args.flatMap((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0) return [w];
    if (!(VALUES as readonly string[]).includes(w.slice(0, eq))) throw new Error(`virus/clamav: unknown argument "${w.slice(0, eq)}"`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
  const a = parsePluginArgs("virus/clamav", words, {
    values: VALUES,
    flags: ["back_compat", "declined_on_fail"],
    positional: [0, 1],
    usage: "CLAMSCAN_PATH",
  });
  const o: Partial<Record<string, string>> = { ...a.values };
  if (a.positional[0] !== undefined) o["clamscan_path"] ??= a.positional[0];
  if (a.flags.has("declined_on_fail")) o["declined_on_fail"] = "1";
  for (const k of ["clamscan_path", "clamd_conf", "tmp_dir", "database"]) {
    if (o[k] !== undefined && !PATH.test(o[k]!)) throw new Error(`virus/clamav: ${k} "${o[k]}" is not an absolute path`);
  }
  for (const k of ["max_size", "scan_timeout"]) {
    if (o[k] !== undefined && !/^\d+(\.\d+)?$/.test(o[k]!)) throw new Error(`virus/clamav: ${k} "${o[k]}" is not a number`);
  }
  if (o["action"] !== undefined && o["action"] !== "add-header" && o["action"] !== "reject") {
    throw new Error(`virus/clamav: action is add-header or reject`);
  }
  if (o["tmp_dir"] !== undefined && !statSync(o["tmp_dir"], { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`virus/clamav: tmp_dir ${o["tmp_dir"]} is not a directory`);
  }
  this.data.path = o["clamscan_path"] ?? "/usr/bin/clamscan";
  this.data.clamdConf = o["clamd_conf"] ?? "/etc/clamav/clamd.conf";
  this.data.database = o["database"];
  this.data.reject = o["action"] === "reject";
  this.data.maxBytes = o["max_size"] === undefined ? 512 * 1024 : Number(o["max_size"]);
  this.data.tmpDir = o["tmp_dir"];
  this.data.declinedOnFail = o["declined_on_fail"] !== undefined;
  this.data.scanMs = o["scan_timeout"] === undefined ? backendTimeLimitMs(this.timeLimitMs) : Number(o["scan_timeout"]) * 1000;
};

export const hook_data_post: Hooks<Data>["data_post"] = async function (txn): Promise<Result> {
  const d = this.data;
  if (txn.data_size() > d.maxBytes) {
    this.log(LOGWARN, `Mail too large to scan (${txn.data_size()} vs ${d.maxBytes})`);
    return DECLINED;
  }
  const file = txn.body_filename();
  shareWithScanner(this, file);
  const started = Date.now();
  let r: { code: number | null; signal: string | null; out: string };
  try {
    r = await run(d.path, argv(d, file), Math.max(1, d.scanMs), this.signal);
  } catch (e) {
    return failed(this, `${d.path}: ${(e as Error).message}`);
  }
  const took = `${Date.now() - started} ms`;
  if (r.signal) return failed(this, `${basename(d.path)} was killed (${r.signal}) after ${took}`);
  if (r.code === 1) {
    const names = [...r.out.matchAll(/: (\S+) FOUND$/gm)].map((m) => m[1]!.replace(/[^\w.:/+-]/g, "?"));
    if (names.length === 0) return failed(this, `${basename(d.path)} exited 1 without naming a virus: ${r.out.slice(0, 200)}`);
    const found = names.join(" ");
    txn.notes("virus", found);
    txn.notes("virus_flag", "Yes");
    this.log(LOGINFO, `fail, virus(es) found: ${found}, ${took}`);
    if (d.reject) return [DENY, `Virus Found: ${found}`];
    txn.header()?.add("X-Virus-Found", "Yes");
    txn.header()?.add("X-Virus-Details", found);
    return DECLINED;
  }
  if (r.code !== 0) return failed(this, `${basename(d.path)} exited ${r.code}: ${r.out.trim().slice(0, 300)}`);
  txn.notes("virus_flag", "No");
  this.log(LOGINFO, `pass, clean, ${took}`);
  txn.header()?.add("X-Virus-Checked", `Checked by ClamAV on ${this.qp.me}`);
  return DECLINED;
};

/** `qpsmtpd check`: the scanner is there and runs (`--version`). */
export const check: Check<Data> = async function () {
  try {
    accessSync(this.data.path, constants.X_OK);
  } catch {
    return [`${this.data.path} is not an executable file`];
  }
  try {
    const r = await run(this.data.path, ["--version"], Math.min(this.data.scanMs, 10_000), AbortSignal.timeout(10_000));
    return r.code === 0 ? [] : [`${this.data.path} --version exited ${r.code ?? r.signal}: ${r.out.trim().slice(0, 200)}`];
  } catch (e) {
    return [`${this.data.path} does not run: ${(e as Error).message}`];
  }
};

function failed(p: HookContext<Data>, why: string): Result {
  p.log(LOGERROR, `ClamAV error, ${p.data.declinedOnFail ? "message not scanned" : "deferring the message"}: ${why}`);
  return p.data.declinedOnFail ? DECLINED : answer(p, 451, "4.3.0", "Unable to scan for viruses now, try again later");
}

/** Our own reply and its RFC 3463 status code, which goes first when the client said EHLO. */
function answer(p: HookContext<Data>, code: number, status: string, text: string): Result {
  p.qp.respond_status(code, status, text);
  return DONE;
}

function argv(d: Data, file: string): string[] {
  const a = ["--stdout", "--no-summary"];
  if (basename(d.path) === "clamdscan") a.push(`--config-file=${d.clamdConf}`);
  else if (d.database) a.push(`--database=${d.database}`);
  a.push(file);
  return a;
}

/** When the spool (or tmp_dir) is shared with a group or everyone, the file is readable likewise. */
function shareWithScanner(p: HookContext<Data>, file: string): void {
  try {
    const mode = statSync(p.data.tmpDir ?? p.qp.spool_dir()).mode;
    if ((mode & 0o077) === 0) return;
    chmodSync(file, 0o600 | (mode & 0o044) | (mode & 0o010 ? 0o040 : 0) | (mode & 0o001 ? 0o004 : 0));
  } catch (e) {
    p.log(LOGWARN, `cannot share the spool file with the scanner: ${(e as Error).message}`);
  }
}

/**
 * Runs `cmd` without a shell, in its own process group; kills the group at `ms` or when `signal`
 * aborts (a wrapper script's children would otherwise keep running, and keep its output open).
 * Keeps MAX_OUTPUT of its output.
 */
function run(
  cmd: string,
  args: string[],
  ms: number,
  signal: AbortSignal,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    const keep = (c: Buffer) => {
      if (out.length < MAX_OUTPUT) out += c.toString("utf8").slice(0, MAX_OUTPUT - out.length);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    let killed: string | null = null;
    const kill = () => {
      killed = "SIGKILL";
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(kill, ms);
    signal.addEventListener("abort", kill, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", kill);
    };
    child.once("error", (e) => {
      done();
      reject(e);
    });
    child.once("close", (code, sig) => {
      done();
      resolve({ code, signal: sig ?? killed, out });
    });
  });
}
