/**
 * The floor: the least an SMTP server on Bun's sockets can cost on this machine. It greets,
 * answers each line 250 (EHLO with two lines), 354 to DATA and 250 after the dot, 221 to QUIT,
 * checks nothing and keeps nothing. `make bench` measures it next to smtp-sink, so a reader sees
 * which part of our CPU per message and per connection is the runtime and the kernel.
 * `--our-sockets` holds the same conversations on the daemon's socket layer (src/runtime/), which
 * bench/connections.ts sets beside it: the difference is what that layer costs.
 * `--workers N` (with `--our-sockets`) runs it in N node:cluster workers sharing the port as the
 * daemon's do: what N processes gain over one on this machine with nothing of ours in them.
 *
 *   bun bench/floor.ts PORT [--our-sockets [--workers N]]
 * @module
 */
import cluster from "node:cluster";

const port = Number(process.argv[2]);
const at = process.argv.indexOf("--workers");
const workers = at > 0 ? Number(process.argv[at + 1]) : 1;
if (workers > 1 && !process.argv.includes("--our-sockets")) {
  // Bun.listen would bind a socket per worker, not share one as the daemon's workers do.
  console.error("floor.ts: --workers needs --our-sockets");
  process.exit(2);
}

/** One client's conversation: bytes in, replies out (`bye` for the last, after which it closes). */
function conversation(): (chunk: Uint8Array) => { out: string; bye: boolean } {
  let pending = "";
  let inData = false;
  return (chunk) => {
    pending += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    let nl: number;
    let out = "";
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (inData) {
        if (line === ".\r") {
          inData = false;
          out += "250 2.0.0 queued\r\n";
        }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === "DATA") {
        inData = true;
        out += "354 go ahead\r\n";
      } else if (verb === "EHLO") out += "250-floor\r\n250 PIPELINING\r\n";
      else if (verb === "QUIT") return { out: `${out}221 2.0.0 bye\r\n`, bye: true };
      else out += "250 2.0.0 ok\r\n";
    }
    return { out, bye: false };
  };
}

const GREETING = "220 floor ESMTP\r\n";

if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    process.exit(0);
  });
} else if (process.argv.includes("--our-sockets")) {
  // Loaded only here: the plain floor stays Bun's sockets and nothing else.
  void import("../src/runtime/sockets.ts").then(({ listen }) =>
    listen("127.0.0.1", port, (c) => {
      const t = c.open();
      const talk = conversation();
      t.start({
        feed(chunk) {
          const { out, bye } = talk(chunk);
          if (out) t.write(out);
          if (bye) t.close();
        },
        end() {},
      });
      t.write(GREETING);
    }, () => undefined)
  );
} else {
  Bun.listen<(chunk: Uint8Array) => { out: string; bye: boolean }>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(s) {
        s.data = conversation();
        s.write(GREETING);
      },
      data(s, chunk) {
        const { out, bye } = s.data(chunk);
        if (bye) s.end(out);
        else if (out) s.write(out);
      },
      error() {},
    },
  });
}
