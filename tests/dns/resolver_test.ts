import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DnsError, reverseIp } from "qpsmtpd";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../../src/config/files.ts";
import { configuredResolver, DnsResolver, parseServer, systemServers } from "../../src/dns/resolver.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "mx.example.org": { A: ["192.0.2.10"], AAAA: ["2001:db8::10"] },
    "example.org": { MX: [[20, "mx2.example.org"], [10, "mx.example.org"]], TXT: ["v=spf1 -all"] },
    "10.2.0.192.in-addr.arpa": { PTR: ["mx.example.org"] },
    "big.example.org": { TXT: ["x".repeat(200), "y".repeat(200)], truncate: true },
    "slow.example.org": { A: ["192.0.2.99"], delayMs: 400 },
    "broken.example.org": { servfail: true },
    "black.hole.example": { drop: true },
  });
});
afterAll(() => dns.stop());

const resolver = (timeoutMs = 1000): DnsResolver =>
  new DnsResolver({ servers: [{ host: "127.0.0.1", port: dns.port }], timeoutMs, tries: 1 });

describe("Resolver", () => {
  test("A, AAAA, MX (sorted), TXT, PTR", async () => {
    const r = resolver();
    expect(await r.resolve_a("mx.example.org")).toEqual(["192.0.2.10"]);
    expect(await r.resolve_aaaa("mx.example.org")).toEqual(["2001:db8::10"]);
    expect(await r.resolve_mx("example.org")).toEqual([{ exchange: "mx.example.org", priority: 10 }, {
      exchange: "mx2.example.org",
      priority: 20,
    }]);
    expect(await r.resolve_txt("example.org")).toEqual(["v=spf1 -all"]);
    expect(await r.resolve_ptr("192.0.2.10")).toEqual(["mx.example.org"]);
  });

  test("NXDOMAIN and no data are empty answers, not errors", async () => {
    const r = resolver();
    expect(await r.resolve_a("nowhere.example.org")).toEqual([]);
    expect(await r.resolve_mx("mx.example.org")).toEqual([]);
  });

  test("a truncated UDP answer is retried over TCP", async () => {
    expect(await resolver().resolve_txt("big.example.org")).toEqual(["x".repeat(200), "y".repeat(200)]);
  });

  test("SERVFAIL and silence are errors that say so", async () => {
    const r = resolver(200);
    expect(r.resolve_a("broken.example.org")).rejects.toThrow(DnsError);
    const e = await r.resolve_a("black.hole.example").catch((x: DnsError) => x);
    expect(e).toBeInstanceOf(DnsError);
    expect((e as DnsError).code).toBe("TIMEOUT");
    expect((e as DnsError).temporary).toBe(true);
  });

  test("resolve() tells NXDOMAIN, NODATA, SERVFAIL and TIMEOUT apart; resolve_a() gives [] for the first two", async () => {
    const r = resolver(200);
    const code = (p: Promise<unknown>): Promise<string> => p.then(() => "answer", (e: DnsError) => e.code);
    expect(await r.resolve("mx.example.org", "A")).toEqual(["192.0.2.10"]);
    expect(await r.resolve("example.org", "MX")).toEqual([{ exchange: "mx.example.org", priority: 10 }, {
      exchange: "mx2.example.org",
      priority: 20,
    }]);
    expect(await code(r.resolve("nothing.example.org", "A"))).toBe("NXDOMAIN");
    expect(await code(r.resolve("example.org", "A"))).toBe("NODATA");
    expect(await code(r.resolve("broken.example.org", "A"))).toBe("SERVFAIL");
    expect(await code(r.resolve("black.hole.example", "A"))).toBe("TIMEOUT");
    expect(await r.resolve_a("nothing.example.org")).toEqual([]);
    expect(await r.resolve_a("example.org")).toEqual([]);
    // The negative answer is cached too, and keeps telling which it was.
    expect(await code(r.resolve("nothing.example.org", "A"))).toBe("NXDOMAIN");
  });

  test("answers are cached for their TTL; concurrent questions share one query", async () => {
    const r = resolver();
    const before = dns.queries.filter((q) => q === "A slow.example.org").length;
    const all = await Promise.all([r.resolve_a("slow.example.org"), r.resolve_a("slow.example.org"), r.resolve_a("SLOW.example.org.")]);
    expect(all).toEqual([["192.0.2.99"], ["192.0.2.99"], ["192.0.2.99"]]);
    await r.resolve_a("slow.example.org");
    expect(dns.queries.filter((q) => q === "A slow.example.org").length - before).toBe(1);
  });

  test("many lookups in flight at once", async () => {
    const r = resolver();
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => r.resolve_a(i === 0 ? "slow.example.org" : `n${i}.example.org`)),
    );
    expect(results[0]).toEqual(["192.0.2.99"]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test("helpers", () => {
    expect(reverseIp("192.0.2.1")).toBe("1.2.0.192");
    expect(reverseIp("2001:db8::1")).toBe("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
    expect(parseServer("127.0.0.1:5353")).toEqual({ host: "127.0.0.1", port: 5353 });
    expect(parseServer("[::1]:53")).toEqual({ host: "::1", port: 53 });
    expect(parseServer("::1")).toEqual({ host: "::1", port: 53 });
    expect(parseServer("nonsense")).toBeUndefined();
    expect(systemServers("/nonexistent")).toEqual([{ host: "127.0.0.1", port: 53 }]);
  });
});

describe("configuredResolver", () => {
  test("one resolver while dns_servers and dns_timeout stay as they are; a new one, asking the new server, when they change", async () => {
    const other = await TestDnsServer.start({ "mx.example.org": { A: ["198.51.100.7"] } });
    try {
      const dir = mkdtempSync(join(tmpdir(), "qpdnscfg-"));
      writeFileSync(join(dir, "dns_servers"), `127.0.0.1:${dns.port}\n`);
      let now = 1_000_000;
      const config = new ConfigDir({ dirs: [dir], now: () => now });
      const forConfig = configuredResolver();
      const first = forConfig(config, () => undefined);
      expect(await first.resolve_a("mx.example.org")).toEqual(["192.0.2.10"]);
      now += 5000; // past the config cache's time: the files are looked at again, unchanged
      expect(forConfig(config, () => undefined)).toBe(first);

      writeFileSync(join(dir, "dns_servers"), `127.0.0.1:${other.port}\n`);
      config.invalidate(); // as SIGHUP
      const second = forConfig(config, () => undefined);
      expect(second).not.toBe(first);
      expect(await second.resolve_a("mx.example.org")).toEqual(["198.51.100.7"]);

      writeFileSync(join(dir, "dns_timeout"), "1\n");
      now += 5000;
      expect(forConfig(config, () => undefined)).not.toBe(second);
      // A test's override of the same servers is the same resolver; other servers, another.
      const third = forConfig(config, () => undefined);
      config.overrides.set("dns_servers", [`127.0.0.1:${other.port}`]);
      expect(forConfig(config, () => undefined)).toBe(third);
      config.overrides.set("dns_servers", [`127.0.0.1:${dns.port}`]);
      expect(await forConfig(config, () => undefined).resolve_a("mx.example.org")).toEqual(["192.0.2.10"]);
    } finally {
      other.stop();
    }
  });
});
