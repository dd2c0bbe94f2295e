/**
 * A real DNS server on loopback (UDP and TCP) serving fixture zones, for tests that must never
 * touch the internet. Names can be slowed down, made to fail, or forced onto TCP.
 */
import * as dgram from "node:dgram";
import * as net from "node:net";
import * as packet from "dns-packet";

export type Records = Partial<Record<"A" | "AAAA" | "TXT" | "PTR" | "NS" | "CNAME", string[]> & { MX: Array<[number, string]> }>;

export interface Zone {
  [name: string]: Records & {
    /** Answer only after this many ms. */
    delayMs?: number;
    /** Answer SERVFAIL. */
    servfail?: boolean;
    /** Set TC over UDP, so the client must retry over TCP. */
    truncate?: boolean;
    /** Never answer. */
    drop?: boolean;
  };
}

export class TestDnsServer {
  zone: Zone;
  readonly port: number;
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server;
  /** Questions seen, as `TYPE name`. */
  readonly queries: string[] = [];

  private constructor(zone: Zone, udp: dgram.Socket, tcp: net.Server, port: number) {
    this.zone = zone;
    this.#udp = udp;
    this.#tcp = tcp;
    this.port = port;
  }

  static async start(zone: Zone): Promise<TestDnsServer> {
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    const port = udp.address().port;
    const tcp = net.createServer();
    await new Promise<void>((r) => tcp.listen(port, "127.0.0.1", r));
    const s = new TestDnsServer(zone, udp, tcp, port);
    udp.on(
      "message",
      (msg, rinfo) => void s.#answer(msg, false).then((out) => out && !s.#stopped && udp.send(out, rinfo.port, rinfo.address)),
    );
    tcp.on("connection", (c) => {
      let buf = Buffer.alloc(0);
      c.on("error", () => undefined);
      c.on("data", async (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const out = await s.#answer(buf.subarray(2, 2 + buf.readUInt16BE(0)), true);
        if (out) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          c.end(Buffer.concat([len, out]));
        }
      });
    });
    return s;
  }

  async #answer(msg: Buffer, overTcp: boolean): Promise<Buffer | undefined> {
    const q = packet.decode(msg);
    const question = q.questions?.[0];
    if (!question) return undefined;
    this.queries.push(`${question.type} ${question.name}`);
    const entry = this.zone[question.name.toLowerCase()];
    if (entry?.drop) return undefined;
    if (entry?.delayMs) await new Promise((r) => setTimeout(r, entry.delayMs));
    const base = { type: "response" as const, id: q.id, questions: q.questions };
    if (entry?.servfail) return packet.encode({ ...base, flags: 2 });
    if (!entry) return packet.encode({ ...base, flags: packet.RECURSION_AVAILABLE | 3 }); // NXDOMAIN
    if (entry.truncate && !overTcp) return packet.encode({ ...base, flags: packet.TRUNCATED_RESPONSE });
    const answers: packet.Answer[] = [];
    const t = question.type;
    if (t === "MX") {
      for (const [preference, exchange] of entry.MX ?? []) {
        answers.push({ type: "MX", name: question.name, ttl: 60, data: { preference, exchange } });
      }
    } else if (t === "TXT") { for (const d of entry.TXT ?? []) answers.push({ type: "TXT", name: question.name, ttl: 60, data: d }); }
    else if (t === "A" || t === "AAAA" || t === "PTR" || t === "NS" || t === "CNAME") {
      for (const d of entry[t] ?? []) answers.push({ type: t, name: question.name, ttl: 60, data: d });
    }
    return packet.encode({ ...base, flags: packet.RECURSION_AVAILABLE, answers });
  }

  #stopped = false;

  async stop(): Promise<void> {
    this.#stopped = true; // delayed answers still pending must not write to the closed socket
    this.#udp.close();
    await new Promise((r) => this.#tcp.close(r));
  }
}
