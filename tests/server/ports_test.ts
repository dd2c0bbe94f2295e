/** Finding a port that is taken already, from /proc/net/tcp and tcp6 (src/server/ports.ts). */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clashes, listeningNow, parseProcNet, readListening } from "../../src/server/ports.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0A29 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1538111 1 0000 100 0 0 10 0
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1587 1 0000 100 0 0 10 0
   2: 0100007F:0A29 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000 20 4 30 10 -1
`;
const TCP6 =
  `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:01D1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:024B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`;

describe("ports taken already", () => {
  test("reads the listening sockets (state 0A) of /proc/net/tcp and tcp6, addresses in host order", () => {
    expect(parseProcNet(TCP, false)).toEqual([
      { address: "127.0.0.1", port: 2601, inode: 1538111 },
      { address: "0.0.0.0", port: 2024, inode: 1587 },
    ]);
    expect(parseProcNet(TCP6, true)).toEqual([
      { address: "0:0:0:0:0:0:0:1", port: 25, inode: 1 },
      { address: "::", port: 465, inode: 2 },
      { address: "::ffff:127.0.0.1", port: 587, inode: 3 },
    ]);
  });

  test("the same port clashes on the same address or where either side is a wildcard", () => {
    const taken = [...parseProcNet(TCP, false), ...parseProcNet(TCP6, true)];
    expect(clashes("127.0.0.1", 2601, taken)).toEqual({ address: "127.0.0.1", port: 2601, inode: 1538111 });
    expect(clashes("127.0.0.2", 2601, taken)).toBeUndefined();
    expect(clashes("0.0.0.0", 2601, taken)).toBeDefined();
    expect(clashes("10.1.2.3", 2024, taken)).toBeDefined(); // 0.0.0.0:2024 holds every address
    expect(clashes("127.0.0.1", 465, taken)).toBeDefined(); // [::]:465, dual stack
    expect(clashes("127.0.0.1", 587, taken)).toBeDefined(); // ::ffff:127.0.0.1
    expect(clashes("127.0.0.1", 2602, taken)).toBeUndefined();
  });

  test("reads only as far as the listening sockets, which the kernel lists first", async () => {
    const waiting = Array.from(
      { length: 5000 },
      (_, i) =>
        `${String(i + 2).padStart(4)}: 0100007F:0A29 0100007F:${
          (0xc000 + i).toString(16).toUpperCase()
        } 06 00000000:00000000 03:00000635 00000000     0        0 0 3 0000`,
    );
    // A listening line after the others is never reached (the kernel writes none there).
    const late = "5003: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000 100 0 0 10 0";
    const f = join(mkdtempSync(join(tmpdir(), "qpports-")), "tcp");
    writeFileSync(f, [...TCP.trimEnd().split("\n").slice(0, 3), ...waiting, late, ""].join("\n"));
    expect(await readListening(f, false)).toEqual([
      { address: "127.0.0.1", port: 2601, inode: 1538111 },
      { address: "0.0.0.0", port: 2024, inode: 1587 },
    ]);
    expect(await readListening(join(f, "..", "missing"), false)).toEqual([]);
  });

  test("sees a real listener on this machine, but not the ones of the processes named as ours", async () => {
    const s = net.createServer();
    const port = await new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as net.AddressInfo).port)));
    // Another process's listener, as a second qpsmtpd's would be.
    const other = spawn("python3", [
      "-c",
      "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)",
    ], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const otherPort = Number(await new Promise<string>((r) => other.stdout!.once("data", (d: Buffer) => r(d.toString()))));
      expect(clashes("127.0.0.1", port, await listeningNow())).toBeDefined();
      expect(clashes("127.0.0.1", port, await listeningNow([process.pid]))).toBeUndefined();
      expect(clashes("127.0.0.1", otherPort, await listeningNow([process.pid]))).toBeDefined();
      expect(clashes("127.0.0.1", otherPort, await listeningNow([process.pid, other.pid!]))).toBeUndefined();
    } finally {
      other.kill();
      s.close();
    }
  });
});
