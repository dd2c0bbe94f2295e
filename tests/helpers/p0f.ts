/**
 * A private p0f 3 daemon (Debian's `p0f`) sniffing the loopback interface, with its API socket in
 * a temp dir; started by the test, stopped by pid. p0f needs CAP_NET_RAW (the tests run as root).
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface P0f {
  readonly socket: string;
  /** Everything p0f printed (its observations, one block per packet). */
  output(): string;
  stop(): Promise<void>;
}

/** A path for p0f's API socket in a new temp dir. */
export function p0fSocketPath(): string {
  return join(mkdtempSync(join(tmpdir(), "qpp0f-")), "p0f.sock");
}

/** Starts p0f on `lo` for TCP traffic to or from `port`; resolves once it is capturing. */
export function startP0f(port: number, socket = p0fSocketPath()): Promise<P0f> {
  const proc = spawn("/usr/sbin/p0f", ["-i", "lo", "-s", socket, "-f", "/etc/p0f/p0f.fp", `tcp port ${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (proc.kill("SIGKILL"), reject(new Error(`p0f did not start:\n${out}`))), 10_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!out.includes("Entered main event loop")) return;
      clearTimeout(timer);
      resolve({
        socket,
        output: () => out,
        stop: () =>
          new Promise<void>((r) => {
            if (proc.exitCode !== null) return r();
            proc.once("exit", () => r());
            process.kill(proc.pid!, "SIGTERM");
          }),
      });
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("exit", (code) => (clearTimeout(timer), reject(new Error(`p0f exited (${code}):\n${out}`))));
  });
}
