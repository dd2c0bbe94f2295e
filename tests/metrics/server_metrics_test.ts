/** ServerMetrics' counting wrappers: what a plugin's lookups and store operations add to the counters. */
import { describe, expect, test } from "bun:test";
import { DnsError } from "qpsmtpd";
import { exposition } from "../../src/metrics/metrics.ts";
import { countingResolver, countingStore, ServerMetrics } from "../../src/metrics/server_metrics.ts";
import { SqliteStore } from "../../src/store/store.ts";
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

describe("countingStore", () => {
  test("answers and errors pass through; each operation counts by name, each failure too", async () => {
    const m = new ServerMetrics();
    const db = new SqliteStore(":memory:");
    const s = countingStore(db, m);
    expect(countingStore(db, m)).toBe(s); // one wrapper per store
    expect(s.location).toBe(":memory:");
    await s.set("k", "v");
    await s.set("v", "text");
    expect(await s.get("k")).toBe("v");
    expect(await s.compareAndSet("k", "v", "w")).toBe(true);
    expect(await s.incr("n", 2)).toBe(2);
    expect(await s.hit("h", 60)).toBe(1);
    expect((await s.keys("")).sort()).toEqual(["h", "k", "n", "v"]);
    await s.delete("k");
    expect(await s.get("k")).toBeUndefined();
    await s.ping();
    await expect(s.incr("n", 1.5)).rejects.toThrow("not an integer");
    await expect(s.incr("v")).rejects.toThrow("does not hold an integer");
    db.close();

    const text = exposition(m.registry.snapshot());
    const count = (name: string, op: string): number => Number(new RegExp(`^${name}\\{op="${op}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count("qpsmtpd_store_operations_total", "get")).toBe(2);
    expect(count("qpsmtpd_store_operations_total", "incr")).toBe(3);
    expect(count("qpsmtpd_store_operations_total", "set")).toBe(2);
    for (const op of ["compareAndSet", "hit", "keys", "delete", "ping"]) expect(count("qpsmtpd_store_operations_total", op)).toBe(1);
    expect(count("qpsmtpd_store_errors_total", "incr")).toBe(2);
    expect(count("qpsmtpd_store_errors_total", "get")).toBe(0);
  });
});
