/**
 * Private milter daemons speaking milter protocol version 6, for the milter plugin's tests:
 * Debian's clamav-milter (backed by a private clamd; it rejects, quarantines, discards or tags),
 * opendkim (signs mail from example.org: it inserts a DKIM-Signature field at the top), and a
 * scripted milter on Sendmail's libmilter (python3-milter) for the stages and actions those two
 * never use (tests/fixtures/milter/scripted_milter.py).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonDir, freePort, type RunningDaemon, startDaemon } from "./daemon.ts";

export interface Milter extends RunningDaemon {
  readonly port: number;
  /** The unix socket, when asked for. */
  readonly socket: string | undefined;
}

/**
 * clamav-milter in front of the clamd at `clamdSocket`. `onInfected`: `Reject` (`550 5.7.1 Virus
 * detected`; with `rejectMsg` a reply code, `%v` the virus), `Quarantine` (SMFIR_QUARANTINE),
 * `Blackhole` (discard) or `Accept`; every message gets X-Virus-Scanned and X-Virus-Status fields,
 * and clamd down means tempfail.
 */
export async function startClamavMilter(
  clamdSocket: string,
  opts: { onInfected?: "Reject" | "Quarantine" | "Blackhole" | "Accept"; rejectMsg?: string; unixSocket?: boolean } = {},
): Promise<Milter> {
  const dir = daemonDir("clamav-milter");
  const port = await freePort();
  const socket = opts.unixSocket ? join(dir, "milter.sock") : undefined;
  const conf = join(dir, "clamav-milter.conf");
  writeFileSync(
    conf,
    [
      `MilterSocket ${socket ? `unix:${socket}` : `inet:${port}@127.0.0.1`}`,
      "MilterSocketMode 666",
      "Foreground yes",
      `PidFile ${join(dir, "milter.pid")}`,
      `ClamdSocket unix:${clamdSocket}`,
      "OnClean Accept",
      `OnInfected ${opts.onInfected ?? "Reject"}`,
      "OnFail Defer",
      "AddHeader Replace",
      ...(opts.rejectMsg ? [`RejectMsg ${opts.rejectMsg}`] : []),
      "LogInfected Basic",
      `LogFile ${join(dir, "milter.log")}`,
      `TemporaryDirectory ${dir}`,
      "ReadTimeout 30",
      "",
    ].join("\n"),
  );
  // It takes 4 s to stop when asked nicely; nothing of it needs to survive the test.
  const d = await startDaemon("clamav-milter", ["clamav-milter", "-c", conf], [socket ? { path: socket } : { port }], {
    cwd: dir,
    graceMs: 200,
  });
  return Object.assign(d, { port, socket });
}

export interface Opendkim extends Milter {
  /** The DNS TXT record value of the selector (`v=DKIM1; k=rsa; p=...`). */
  readonly dnsRecord: string;
}

/** opendkim signing mail whose From is in `domain` with selector `test`; verifying the rest. */
export async function startOpendkim(domain = "example.org"): Promise<Opendkim> {
  const dir = daemonDir("opendkim");
  const port = await freePort();
  const key = join(dir, "test.private");
  execFileSync("openssl", ["genrsa", "-out", key, "2048"], { stdio: "ignore" });
  chmodSync(key, 0o600);
  const pub = execFileSync("openssl", ["rsa", "-in", key, "-pubout", "-outform", "DER"], { stdio: ["ignore", "pipe", "ignore"] });
  const conf = join(dir, "opendkim.conf");
  writeFileSync(
    conf,
    [
      "Mode sv",
      `Domain ${domain}`,
      "Selector test",
      `KeyFile ${key}`,
      `Socket inet:${port}@127.0.0.1`,
      "Background no",
      `PidFile ${join(dir, "opendkim.pid")}`,
      "Syslog no",
      "Canonicalization relaxed/relaxed",
      "InternalHosts 127.0.0.1",
      "RequireSafeKeys false",
      "",
    ].join("\n"),
  );
  const d = await startDaemon("opendkim", ["opendkim", "-f", "-x", conf], [{ port }], { cwd: dir });
  return Object.assign(d, { port, socket: undefined, dnsRecord: `v=DKIM1; k=rsa; p=${pub.toString("base64")}` });
}

export interface ScriptedMilter extends Milter {
  /** What the milter saw so far, one event an entry (`ev`: connect, helo, mail, rcpt, header, ...). */
  events(): Array<Record<string, unknown> & { ev: string }>;
}

const SCRIPT = new URL("../fixtures/milter/scripted_milter.py", import.meta.url).pathname;

export async function startScriptedMilter(): Promise<ScriptedMilter> {
  const dir = daemonDir("scripted-milter");
  const port = await freePort();
  const log = join(dir, "events.jsonl");
  // Debian's python3, not whatever python3 is first in PATH: python3-milter is installed for it.
  const d = await startDaemon("scripted milter", ["/usr/bin/python3", SCRIPT, `inet:${port}@127.0.0.1`, log], [{ port }], { cwd: dir });
  const events = () =>
    existsSync(log)
      ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown> & { ev: string })
      : [];
  return Object.assign(d, { port, socket: undefined, events });
}
