/**
 * The control socket: a unix socket the running daemon answers on, one JSON request line in, one
 * JSON answer out. `qpsmtpd status` asks it. The socket is made with mode 0600 in a directory of
 * mode 0700 before the daemon drops root, so only root (and the daemon's own user) may ask.
 * @module
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { dirname } from "node:path";

/** The most a request may hold: they are one short JSON line. */
const MAX_REQUEST = 4096;

export interface ControlServer {
  readonly path: string;
  close(): void;
}

/** Listens on `path` and answers each request with `answer(request)`; a stale socket file is replaced. */
export async function serveControl(path: string, answer: (request: { cmd: string }) => Promise<unknown>): Promise<ControlServer> {
  fs.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch { /* none there */ }
  const server = net.createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => undefined);
    sock.setTimeout(5000, () => sock.destroy());
    sock.on("data", (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST) return void sock.destroy();
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      let req: { cmd?: unknown };
      try {
        req = JSON.parse(buf.slice(0, nl)) as { cmd?: unknown };
      } catch {
        sock.end(`${JSON.stringify({ error: "the request is not JSON" })}\n`);
        return;
      }
      if (typeof req.cmd !== "string") {
        sock.end(`${JSON.stringify({ error: "no cmd" })}\n`);
        return;
      }
      answer({ cmd: req.cmd }).then(
        (r) => sock.end(`${JSON.stringify(r)}\n`),
        (e: Error) => sock.end(`${JSON.stringify({ error: e.message })}\n`),
      );
    });
  });
  const old = process.umask(0o177); // the socket file is made 0600
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  fs.chmodSync(path, 0o600);
  return {
    path,
    close() {
      server.close();
      try {
        fs.unlinkSync(path);
      } catch { /* gone */ }
    },
  };
}

/** Asks the daemon at `path`; rejects when nothing answers within `timeoutMs`. */
export function askControl(path: string, cmd: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path });
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the daemon at ${path} did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${JSON.stringify({ cmd })}\n`));
    sock.on("data", (d: string) => (buf += d));
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the daemon at ${path}: ${e.message}`));
    });
    sock.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new Error(`the daemon at ${path} answered something that is not JSON`));
      }
    });
  });
}
