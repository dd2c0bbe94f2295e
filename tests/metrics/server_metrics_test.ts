/** ServerMetrics' counting wrappers: what a plugin's lookups add to the DNS counters. */
import { describe, expect, test } from "bun:test";
import { DnsError } from "qpsmtpd";
import { exposition } from "../../src/metrics/metrics.ts";
import { countingResolver, ServerMetrics } from "../../src/metrics/server_metrics.ts";
import { ZoneResolver } from "../../src/testing/zone_resolver.ts";

describe("countingResolver", () => {
  test("answers and errors pass through; each lookup counts by record type, each failure by its code", async () => {
    const m = new ServerMetrics();
    const zones = new ZoneResolver({
      "example.org": { A: ["192.0.2.1"], MX: [[10, "mx.example.org"]], TXT: ["v=spf1 -all"] },
      "slow.example.org": "TIMEOUT",
    });
    const r = countingResolver(zones, m);
    expect(countingResolver(zones, m)).toBe(r); // one wrapper per resolver
    expect(await r.resolve_a("example.org")).toEqual(["192.0.2.1"]);
    expect(await r.resolve_mx("example.org")).toEqual([{ exchange: "mx.example.org", priority: 10 }]);
    expect(await r.resolve("example.org", "TXT")).toEqual(["v=spf1 -all"]);
    expect(await r.resolve_ptr("192.0.2.1")).toEqual([]);
    const failed = await r.resolve("nowhere.example.org", "A").catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DnsError);
    expect((failed as DnsError).code).toBe("NXDOMAIN");
    await expect(r.resolve_aaaa("slow.example.org")).rejects.toThrow(DnsError);
    expect(zones.queries).toHaveLength(6);

    const text = exposition(m.registry.snapshot());
    const count = (name: string, labels: string): number => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count("qpsmtpd_dns_lookups_total", 'type="A"')).toBe(2);
    expect(count("qpsmtpd_dns_lookups_total", 'type="MX"')).toBe(1);
    expect(count("qpsmtpd_dns_lookups_total", 'type="TXT"')).toBe(1);
    expect(count("qpsmtpd_dns_lookups_total", 'type="PTR"')).toBe(1);
    expect(count("qpsmtpd_dns_lookups_total", 'type="AAAA"')).toBe(1);
    expect(count("qpsmtpd_dns_failures_total", 'error="NXDOMAIN",type="A"')).toBe(1);
    expect(count("qpsmtpd_dns_failures_total", 'error="TIMEOUT",type="AAAA"')).toBe(1);
  });
});
