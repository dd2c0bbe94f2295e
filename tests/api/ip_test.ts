/** The public IP helpers: CIDR matching, client-list entries, reversed names. */
import { describe, expect, test } from "bun:test";
import { cidrContains, matchesClientEntry, normaliseIp, reverseIp, sameNet24 } from "qpsmtpd";

describe("ip helpers", () => {
  test("cidrContains and client entries", () => {
    expect(cidrContains("192.0.2.0/24", "192.0.2.0")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "192.0.2.255")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "192.0.3.0")).toBe(false);
    expect(cidrContains("::/0", "2001:db8::1")).toBe(true);
    expect(cidrContains("192.0.2.0/24", "2001:db8::1")).toBe(false);
    // IPv4 at the edges of the 32 bits, and where the families meet.
    expect(cidrContains("0.0.0.0/0", "255.255.255.255")).toBe(true);
    expect(cidrContains("128.0.0.0/1", "255.255.255.255")).toBe(true);
    expect(cidrContains("128.0.0.0/1", "127.255.255.255")).toBe(false);
    expect(cidrContains("255.255.255.254/31", "255.255.255.255")).toBe(true);
    expect(cidrContains("192.0.2.7", "192.0.2.7")).toBe(true);
    expect(cidrContains("192.0.2.7/32", "192.0.2.6")).toBe(false);
    expect(cidrContains("192.0.2.0/33", "192.0.2.0")).toBe(false);
    expect(cidrContains("192.0.2.0/x", "192.0.2.0")).toBe(false);
    // A malformed length matches nothing, never everything: `10.0.0.0/` in relayclients is not an open relay.
    for (const bad of ["10.0.0.0/", "10.0.0.0/0x8", "10.0.0.0/ 8", "10.0.0.0/8/8", "10.0.0.0/1e1", "::/", "::/0x0"]) {
      expect(cidrContains(bad, bad.startsWith(":") ? "2001:db8::1" : "198.51.100.1")).toBe(false);
    }
    expect(matchesClientEntry("10.0.0.0/", "198.51.100.1")).toBe(false);
    expect(cidrContains("127.0.0.0/8", "::ffff:127.0.0.1")).toBe(true);
    expect(cidrContains("::ffff:192.0.2.0/120", "192.0.2.1")).toBe(false);
    expect(cidrContains("::1/128", "127.0.0.1")).toBe(false);
    expect(cidrContains("192.0.2.0/24", "not an address")).toBe(false);
    expect(matchesClientEntry("2001:db8::1", "2001:0db8:0:0::1")).toBe(true);
    expect(matchesClientEntry("192.0.2.1", "::ffff:192.0.2.1")).toBe(true);
  });

  test("normaliseIp, reverseIp and sameNet24", () => {
    expect(normaliseIp("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(reverseIp("192.0.2.1")).toBe("1.2.0.192");
    expect(reverseIp("2001:db8::1")).toBe("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
    expect(reverseIp("not an address")).toBeUndefined();
    expect(sameNet24("192.0.2.1", "192.0.2.200")).toBe(true);
    expect(sameNet24("192.0.2.1", "192.0.3.1")).toBe(false);
  });
});
