import { describe, expect, test } from "bun:test";
import { exposition, mergeSnapshots, Metrics } from "../../src/metrics/metrics.ts";
import { run } from "../e2e/helpers.ts";

function sample(): Metrics {
  const m = new Metrics();
  m.counter("qpsmtpd_connections_total", "Connections accepted").inc();
  m.counter("qpsmtpd_refused_total", "Refused").inc({ reason: 'quote " back\\slash\nline' }, 2);
  m.gauge("qpsmtpd_connections_open", "Open connections").set(3);
  const h = m.histogram("qpsmtpd_hook_duration_seconds", "Hook time", [0.01, 0.1]);
  h.observe(0.005, { hook: "rcpt", plugin: "rcpt_ok" });
  h.observe(0.05, { hook: "rcpt", plugin: "rcpt_ok" });
  h.observe(3, { hook: "rcpt", plugin: "rcpt_ok" });
  return m;
}

describe("metrics", () => {
  test("the text format: HELP, TYPE, escaped labels, cumulative buckets, _sum and _count", () => {
    const text = exposition(sample().snapshot());
    expect(text).toContain("# TYPE qpsmtpd_connections_total counter\nqpsmtpd_connections_total 1\n");
    expect(text).toContain('qpsmtpd_refused_total{reason="quote \\" back\\\\slash\\nline"} 2\n');
    expect(text).toContain('qpsmtpd_hook_duration_seconds_bucket{hook="rcpt",plugin="rcpt_ok",le="0.01"} 1\n');
    expect(text).toContain('qpsmtpd_hook_duration_seconds_bucket{hook="rcpt",plugin="rcpt_ok",le="0.1"} 2\n');
    expect(text).toContain('qpsmtpd_hook_duration_seconds_bucket{hook="rcpt",plugin="rcpt_ok",le="+Inf"} 3\n');
    expect(text).toContain('qpsmtpd_hook_duration_seconds_sum{hook="rcpt",plugin="rcpt_ok"} 3.055\n');
    expect(text).toContain('qpsmtpd_hook_duration_seconds_count{hook="rcpt",plugin="rcpt_ok"} 3\n');
  });

  test("Prometheus' own promtool accepts it", async () => {
    const r = await run(["promtool", "check", "metrics"], exposition(sample().snapshot()));
    expect(r).toEqual({ code: 0, out: "" });
    // And refuses what is wrong, so the check can fail.
    const bad = await run(["promtool", "check", "metrics"], '# TYPE x counter\nx{a="1" 2\n');
    expect(bad.code).not.toBe(0);
  });

  test("snapshots of several workers add up", () => {
    const merged = exposition(mergeSnapshots([sample().snapshot(), sample().snapshot()]));
    expect(merged).toContain("qpsmtpd_connections_total 2\n");
    expect(merged).toContain("qpsmtpd_connections_open 6\n");
    expect(merged).toContain('qpsmtpd_hook_duration_seconds_bucket{hook="rcpt",plugin="rcpt_ok",le="+Inf"} 6\n');
    expect(JSON.parse(JSON.stringify(sample().snapshot()))).toEqual(sample().snapshot());
  });

  test("bad names are refused; a name keeps its type", () => {
    const m = new Metrics();
    expect(() => m.counter("bad-name", "x")).toThrow("bad metric name");
    m.counter("c", "x");
    expect(() => m.gauge("c", "x")).toThrow("is a counter");
    expect(() => m.counter("d", "x").inc({ "bad-label": "1" })).toThrow("bad label name");
  });
});
