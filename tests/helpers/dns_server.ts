/**
 * A real DNS server on loopback (UDP and TCP) serving fixture zones, for tests that must never
 * touch the internet. Names can be slowed down, made to fail, or forced onto TCP. A name with a
 * CNAME answers other types with the CNAME chain and the target's records, as a recursive
 * server does. A TXT record is a string or its character-strings (`["v=spf1 ", "-all"]`).
 */
import * as dgram from "node:dgram";
import * as net from "node:net";
import * as packet from "dns-packet";

export type Records = Partial<
  Record<"A" | "AAAA" | "PTR" | "NS" | "CNAME", string[]> & { TXT: Array<string | string[]>; MX: Array<[number, string]> }
>;

export interface Zone {
  [name: string]: Records & {
    /** Answer only after this many ms. */
    delayMs?: number;
    /** Answer SERVFAIL. */
    servfail?: boolean;
    /** Set TC over UDP, so the client must retry over TCP. */
    truncate?: boolean;
    /** Never answer (true), or never answer questions of these types. */
    drop?: boolean | readonly string[];
  };
}

/** The records of `type` in `entry`, as answers for `name`. */
function recordsOf(entry: Records | undefined, name: string, type: string): packet.Answer[] {
  if (!entry) return [];
  if (type === "MX") {
    return (entry.MX ?? []).map(([preference, exchange]) => ({ type: "MX", name, ttl: 60, data: { preference, exchange } }));
  }
  if (type === "TXT") return (entry.TXT ?? []).map((d) => ({ type: "TXT", name, ttl: 60, data: d }));
  if (type === "A" || type === "AAAA" || type === "PTR" || type === "NS" || type === "CNAME") {
    return (entry[type] ?? []).map((d) => ({ type, name, ttl: 60, data: d }));
  }
  return [];
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
    let udp: dgram.Socket;
    let tcp: net.Server;
    for (let attempt = 0;; attempt++) {
      udp = dgram.createSocket("udp4");
      await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
      tcp = net.createServer();
      const port = udp.address().port;
      // The UDP port's TCP twin may be taken by someone else: then try another port.
      const listening = await new Promise<boolean>((r) => {
        tcp.once("error", () => r(false));
        tcp.listen(port, "127.0.0.1", () => r(true));
      });
      if (listening) break;
      udp.close();
      if (attempt >= 20) throw new Error("no free port for the test DNS server");
    }
    const port = udp.address().port;
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
    const t = question.type;
    const entry = this.zone[question.name.toLowerCase().replace(/\.$/, "")];
    if (entry?.drop === true || (Array.isArray(entry?.drop) && entry.drop.includes(t))) return undefined;
    if (entry?.delayMs) await new Promise((r) => setTimeout(r, entry.delayMs));
    const base = { type: "response" as const, id: q.id, questions: q.questions };
    if (entry?.servfail) return packet.encode({ ...base, flags: 2 });
    if (!entry) return packet.encode({ ...base, flags: packet.RECURSION_AVAILABLE | 3 }); // NXDOMAIN
    if (entry.truncate && !overTcp) return packet.encode({ ...base, flags: packet.TRUNCATED_RESPONSE });
    const answers: packet.Answer[] = [];
    // Follow CNAMEs as a recursive server does (a loop ends after a few steps).
    let name = question.name;
    let at: Records | undefined = entry;
    for (let hops = 0; t !== "CNAME" && at?.CNAME?.length && hops < 8; hops++) {
      const target: string = at.CNAME[0]!;
      answers.push({ type: "CNAME", name, ttl: 60, data: target });
      name = target;
      at = this.zone[target.toLowerCase().replace(/\.$/, "")];
      if (!at) return packet.encode({ ...base, flags: packet.RECURSION_AVAILABLE | 3, answers }); // NXDOMAIN at the target
    }
    answers.push(...recordsOf(at, name, t));
    return packet.encode({ ...base, flags: packet.RECURSION_AVAILABLE, answers });
  }

  #stopped = false;

  async stop(): Promise<void> {
    this.#stopped = true; // delayed answers still pending must not write to the closed socket
    this.#udp.close();
    await new Promise((r) => this.#tcp.close(r));
  }
}
