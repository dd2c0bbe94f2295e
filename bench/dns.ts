// A local DNS server for `make bench`: answers the sample plugin set's lookups from memory.
import { TestDnsServer } from "../tests/helpers/dns_server.ts";

const s = await TestDnsServer.start({
  "example.net": { MX: [[10, "mx.example.net"]], A: ["192.0.2.25"] },
  "mx.example.net": { A: ["192.0.2.25"] },
  "1.0.0.127.in-addr.arpa": { PTR: ["localhost"] },
  localhost: { A: ["127.0.0.1"] },
});
process.stdout.write(`${s.port}\n`);
