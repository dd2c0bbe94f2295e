/** Finding a port that is taken already, from /proc/net/tcp and tcp6 (src/server/ports.ts). */
import { describe, expect, test } from "bun:test";
import * as net from "node:net";
import { clashes, listeningNow, parseProcNet } from "../../src/server/ports.ts";

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
    expect(parseProcNet(TCP, false)).toEqual([{ address: "127.0.0.1", port: 2601 }, { address: "0.0.0.0", port: 2024 }]);
    expect(parseProcNet(TCP6, true)).toEqual([
      { address: "0:0:0:0:0:0:0:1", port: 25 },
      { address: "::", port: 465 },
      { address: "::ffff:127.0.0.1", port: 587 },
    ]);
  });

  test("the same port clashes on the same address or where either side is a wildcard", () => {
    const taken = [...parseProcNet(TCP, false), ...parseProcNet(TCP6, true)];
    expect(clashes("127.0.0.1", 2601, taken)).toEqual({ address: "127.0.0.1", port: 2601 });
    expect(clashes("127.0.0.2", 2601, taken)).toBeUndefined();
    expect(clashes("0.0.0.0", 2601, taken)).toBeDefined();
    expect(clashes("10.1.2.3", 2024, taken)).toBeDefined(); // 0.0.0.0:2024 holds every address
    expect(clashes("127.0.0.1", 465, taken)).toBeDefined(); // [::]:465, dual stack
    expect(clashes("127.0.0.1", 587, taken)).toBeDefined(); // ::ffff:127.0.0.1
    expect(clashes("127.0.0.1", 2602, taken)).toBeUndefined();
  });

  test("sees a real listener on this machine", async () => {
    const s = net.createServer();
    const port = await new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as net.AddressInfo).port)));
    try {
      expect(clashes("127.0.0.1", port, listeningNow())).toBeDefined();
    } finally {
      s.close();
    }
  });
});
