/**
 * A vpopmaild stand-in. vpopmail is not in Debian (nor on npm), so this loopback server follows
 * the documented protocol (qmailwiki "Vpopmaild" sample sessions, as qpsmtpd's and Haraka's
 * plugins speak it): greeting `+OK `; `login user@domain password [compact]` answered `+OK+`,
 * the account's details (its clear-text password among them) and `.`, or
 * `-ERR 0105 invalid login`; the connection closed after the third invalid login; `quit`
 * answered `+OK ` and closed. Passwords are compared in constant time. Users whose name starts
 * with `slow` are answered `slowMs` late.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as net from "node:net";

export interface Vpopmaild {
  readonly port: number;
  /** Every line received, per connection. */
  readonly lines: string[][];
  close(): Promise<void>;
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

export async function startVpopmaild(users: Record<string, string>, slowMs = 0): Promise<Vpopmaild> {
  const lines: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    const mine: string[] = [];
    lines.push(mine);
    let failures = 0;
    let buf = "";
    s.write("+OK \r\n");
    s.on("data", async (d: Buffer) => {
      buf += d.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, "");
        buf = buf.slice(i + 1);
        mine.push(line);
        const [cmd = "", ...args] = line.trim().split(/[ \t]+/);
        if (cmd === "quit") {
          s.end("+OK \r\n");
          return;
        }
        if (cmd !== "login") {
          s.write("-ERR 0101 unknown command\r\n");
          continue;
        }
        const [user = "", pass = ""] = args;
        if (user.startsWith("slow") && slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
        const want = users[user];
        if (want !== undefined && timingSafeEqual(digest(want), digest(pass))) {
          s.write(`+OK+\r\nvpopmail_dir /home/vpopmail\r\nname ${user.split("@")[0]}\r\nclear_text_password ${want}\r\n.\r\n`);
          continue;
        }
        s.write("-ERR 0105 invalid login\r\n");
        if (++failures >= 3) s.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    lines,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
