/**
 * Misbehaving peers for the failure tests of backend plugins: a listener that accepts and never
 * answers, and one that follows a script and then hangs up. These are fault injectors, not
 * stand-ins for a real server: the real daemons are in the other helpers.
 */
import * as net from "node:net";

export interface FakePeer {
  /** `{ host, port }` for TCP, `{ path }` for a unix socket. */
  readonly target: { host: string; port: number } | { path: string };
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections the client has closed (or that ended) so far. */
  readonly closed: number;
  /** Everything received, per connection, as latin1 text. */
  readonly received: string[];
  close(): Promise<void>;
}

/**
 * A peer on loopback (or at unix socket `path`) that runs `script` for each connection:
 * `script(socket, index)`. Without a script it accepts and never says a word.
 */
export async function fakePeer(
  script?: (socket: net.Socket, index: number) => void,
  path?: string,
): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const received: string[] = [];
  let accepted = 0;
  let closed = 0;
  const server = net.createServer((s) => {
    const index = accepted++;
    received[index] = "";
    sockets.add(s);
    s.on("data", (d: Buffer) => {
      received[index] += d.toString("latin1");
    });
    s.on("error", () => undefined);
    s.on("close", () => {
      closed++;
      sockets.delete(s);
    });
    script?.(s, index);
  });
  await new Promise<void>((r) => (path ? server.listen(path, r) : server.listen(0, "127.0.0.1", r)));
  const port = path ? 0 : (server.address() as net.AddressInfo).port;
  return {
    target: path ? { path } : { host: "127.0.0.1", port },
    port,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Answers each line the client sends with the next of `replies`; past the end, it hangs up. */
export function lineScript(greeting: string | undefined, replies: readonly string[]): (s: net.Socket) => void {
  return (s) => {
    if (greeting !== undefined) s.write(greeting);
    let buf = "";
    let next = 0;
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        buf = buf.slice(i + 1);
        if (next >= replies.length) {
          s.destroy();
          return;
        }
        s.write(replies[next++]!);
      }
    });
  };
}

/** A loopback port with nothing listening: connections are refused. */
export async function refusingPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
