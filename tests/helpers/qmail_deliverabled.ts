/**
 * A stand-in for qmail-deliverabled (Qmail::Deliverable's daemon: on CPAN, in neither Debian nor
 * npm), following its documented protocol: `GET /qd1/deliverable?<uri-escaped address>` answers
 * 200 with the status as a decimal number, or 204 for "no answer"; anything else is 404.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface Deliverabled {
  readonly port: number;
  /** Every request line's target, as received (to check the escaping). */
  readonly requests: string[];
  stop(): Promise<void>;
}

/** Statuses by address; an address not listed is 0 (not deliverable); `null` answers 204. */
export async function startDeliverabled(statuses: Record<string, number | null>): Promise<Deliverabled> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    const m = /^\/qd1\/deliverable\?(.*)$/.exec(req.url ?? "");
    if (req.method !== "GET" || !m) return res.writeHead(404).end();
    const address = decodeURIComponent(m[1]!);
    const status = address in statuses ? statuses[address] : 0;
    if (status === null) return res.writeHead(204).end();
    res.writeHead(200, { "Content-Type": "text/plain" }).end(String(status));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
