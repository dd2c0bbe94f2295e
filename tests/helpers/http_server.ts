/**
 * A private HTTP server: Python's `http.server` (Debian's python3) serving a temp directory on
 * loopback, started by the test and stopped by pid. Files are served as written.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface HttpServer {
  readonly port: number;
  readonly root: string;
  /** Writes `path` (relative to the root) with `text`. */
  put(path: string, text: string): void;
  stop(): Promise<void>;
}

/** Starts `python3 -m http.server` on 127.0.0.1 with an ephemeral port; resolves once it listens. */
export function startHttpServer(): Promise<HttpServer> {
  const root = mkdtempSync(join(tmpdir(), "qphttp-"));
  const proc = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", root], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (proc.kill("SIGKILL"), reject(new Error(`http.server did not start: ${out}`))), 10_000);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        port: Number(m[1]),
        root,
        put(path, text) {
          mkdirSync(dirname(join(root, path)), { recursive: true });
          writeFileSync(join(root, path), text);
        },
        stop: () =>
          new Promise<void>((r) => {
            if (proc.exitCode !== null) return r();
            proc.once("exit", () => r());
            process.kill(proc.pid!, "SIGTERM");
          }),
      });
    });
    proc.stderr!.on("data", () => undefined); // its request log
    proc.once("exit", (code) => (clearTimeout(timer), reject(new Error(`http.server exited (${code}): ${out}`))));
  });
}
