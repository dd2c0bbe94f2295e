/**
 * The floor: the least an SMTP server on Bun's sockets can cost on this machine. It greets,
 * answers each line 250 (EHLO with two lines), 354 to DATA and 250 after the dot, 221 to QUIT,
 * checks nothing and keeps nothing. `make bench` measures it next to smtp-sink, so a reader sees
 * which part of our CPU per message and per connection is the runtime and the kernel.
 *
 *   bun bench/floor.ts PORT
 * @module
 */
const port = Number(process.argv[2]);

interface Conversation {
  pending: string;
  inData: boolean;
}

Bun.listen<Conversation>({
  hostname: "127.0.0.1",
  port,
  socket: {
    open(s) {
      s.data = { pending: "", inData: false };
      s.write("220 floor ESMTP\r\n");
    },
    data(s, chunk) {
      const c = s.data;
      c.pending += chunk.toString("latin1");
      let nl: number;
      let out = "";
      while ((nl = c.pending.indexOf("\n")) >= 0) {
        const line = c.pending.slice(0, nl);
        c.pending = c.pending.slice(nl + 1);
        if (c.inData) {
          if (line === ".\r") {
            c.inData = false;
            out += "250 2.0.0 queued\r\n";
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "DATA") {
          c.inData = true;
          out += "354 go ahead\r\n";
        } else if (verb === "EHLO") out += "250-floor\r\n250 PIPELINING\r\n";
        else if (verb === "QUIT") {
          s.end("221 2.0.0 bye\r\n");
          return;
        } else out += "250 2.0.0 ok\r\n";
      }
      if (out) s.write(out);
    },
    error() {},
  },
});
