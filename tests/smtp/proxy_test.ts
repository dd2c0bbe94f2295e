/** The PROXY header parser (v1 and v2), byte by byte, with every malformed form refused. */
import { describe, expect, test } from "bun:test";
import { formatV6, parseProxyHeader, PROXY_V2_MAX_LENGTH, ProxyHeaderReader, type ProxyStep } from "../../src/smtp/proxy.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const SIG = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);

function concat(...parts: Array<Uint8Array | number[]>): Uint8Array {
  const all = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const u16 = (n: number): number[] => [n >> 8, n & 0xff];

/** A v2 header: version/command byte, family byte, body (addresses and TLVs); `len` may lie. */
function v2(verCmd: number, fam: number, body: Uint8Array | number[], len?: number): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  return concat(SIG, [verCmd, fam, ...u16(len ?? b.length)], b);
}

const v4Block = (src: number[], dst: number[], sp: number, dp: number): number[] => [...src, ...dst, ...u16(sp), ...u16(dp)];
const v6Bytes = (groups: number[]): number[] => groups.flatMap((g) => u16(g));
const tlv = (type: number, value: number[]): number[] => [type, ...u16(value.length), ...value];

function done(step: ProxyStep) {
  if (step.state !== "done") throw new Error(`expected a header, got ${JSON.stringify(step)}`);
  return step;
}

function errorOf(step: ProxyStep): string {
  if (step.state !== "error") throw new Error(`expected a refusal, got ${JSON.stringify(step)}`);
  return step.reason;
}

/** Feeds `bytes` one at a time; returns every step. */
function byteByByte(bytes: Uint8Array): ProxyStep[] {
  const r = new ProxyHeaderReader();
  return [...bytes].map((b) => r.push(Uint8Array.of(b)));
}

describe("PROXY v1", () => {
  test("TCP4: the client and the destination, and the bytes after the header untouched", () => {
    const s = done(parseProxyHeader(enc("PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n")));
    expect(s.header).toEqual({
      version: 1,
      kind: "TCP4",
      addresses: { source: { ip: "192.0.2.7", port: 40000 }, destination: { ip: "198.51.100.1", port: 25 } },
      tlvs: 0,
      length: 44,
    });
    expect(new TextDecoder().decode(s.rest)).toBe("EHLO x\r\n");
  });

  test("TCP6: addresses in canonical form (upper case and zero runs normalised)", () => {
    const s = done(parseProxyHeader(enc("PROXY TCP6 2001:DB8:0:0:0:0:0:5 ::1 65535 0\r\n")));
    expect(s.header.addresses).toEqual({ source: { ip: "2001:db8::5", port: 65535 }, destination: { ip: "::1", port: 0 } });
    expect(s.rest.length).toBe(0);
    const mapped = done(parseProxyHeader(enc("PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n")));
    expect(mapped.header.addresses?.source.ip).toBe("::ffff:192.0.2.9");
  });

  test("UNKNOWN keeps the socket's addresses, with or without the rest of the line", () => {
    for (const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"]) {
      const s = done(parseProxyHeader(enc(`${line}QUIT\r\n`)));
      expect(s.header.kind).toBe("UNKNOWN");
      expect(s.header.addresses).toBeUndefined();
      expect(new TextDecoder().decode(s.rest)).toBe("QUIT\r\n");
    }
  });

  test("the longest legal line (107 bytes) passes; one byte more is refused", () => {
    const base = "PROXY UNKNOWN ";
    const ok = `${base}${"x".repeat(107 - base.length - 2)}\r\n`;
    expect(ok.length).toBe(107);
    expect(done(parseProxyHeader(enc(ok))).header.length).toBe(107);
    const long = `${base}${"x".repeat(107 - base.length - 1)}\r\n`;
    expect(errorOf(parseProxyHeader(enc(long)))).toContain("longer than 107");
    // Without a line end at all: refused as soon as 106 bytes show none.
    expect(parseProxyHeader(enc(`${base}${"x".repeat(90)}`)).state).toBe("more");
    expect(errorOf(parseProxyHeader(enc("PROXY " + "x".repeat(200))))).toContain("longer than 107");
  });

  test.each([
    ["garbage", "EHLO mail.example.org\r\n", "not a PROXY header"],
    ["lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY header"],
    ["bad family", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "family"],
    ["family mismatch", "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", "address not valid"],
    ["v4 in TCP6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "address not valid"],
    ["octet over 255", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "address not valid"],
    ["leading zero in an octet", "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "address not valid"],
    ["three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "address not valid"],
    ["zone index", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "address not valid"],
    ["brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", "address not valid"],
    ["port over 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "port"],
    ["leading zero in a port", "PROXY TCP4 1.2.3.4 5.6.7.8 025 2\r\n", "port"],
    ["signed port", "PROXY TCP4 1.2.3.4 5.6.7.8 +25 2\r\n", "port"],
    ["double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "single spaces"],
    ["trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "single spaces"],
    ["missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "single spaces"],
    ["tab", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "control"],
    ["bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nEHLO x\r\n", "control"],
    ["bare CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rEHLO\r\n", "bare CR"],
    ["8-bit byte", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00e9\r\n", "non-ASCII"],
  ])("refused: %s", (_name, text, reason) => {
    expect(errorOf(parseProxyHeader(enc(text)))).toContain(reason);
  });

  test("garbage is refused at the first byte that shows it, not after a wait", () => {
    const steps = byteByByte(enc("PROXX TCP4"));
    expect(steps.slice(0, 4).every((s) => s.state === "more")).toBe(true);
    expect(steps[4]!.state).toBe("error");
    expect(byteByByte(enc("H"))[0]!.state).toBe("error");
  });

  test("one byte at a time: 'more' until the LF, then the header", () => {
    const text = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n";
    const steps = byteByByte(enc(text));
    expect(steps.slice(0, -1).every((s) => s.state === "more")).toBe(true);
    expect(done(steps.at(-1)!).header.addresses?.source).toEqual({ ip: "192.0.2.7", port: 40000 });
  });
});

describe("PROXY v2", () => {
  test("PROXY over TCP4, and the bytes after it", () => {
    const h = v2(0x21, 0x11, v4Block([192, 0, 2, 7], [198, 51, 100, 1], 40000, 25));
    const s = done(parseProxyHeader(concat(h, enc("EHLO x\r\n"))));
    expect(s.header).toEqual({
      version: 2,
      kind: "TCP4",
      addresses: { source: { ip: "192.0.2.7", port: 40000 }, destination: { ip: "198.51.100.1", port: 25 } },
      tlvs: 0,
      length: 28,
    });
    expect(new TextDecoder().decode(s.rest)).toBe("EHLO x\r\n");
  });

  test("PROXY over TCP6, including an IPv4-mapped client", () => {
    const body = [
      ...v6Bytes([0x2001, 0xdb8, 0, 0, 0, 0, 0, 5]),
      ...v6Bytes([0, 0, 0, 0, 0, 0, 0, 1]),
      ...u16(1234),
      ...u16(587),
    ];
    const s = done(parseProxyHeader(v2(0x21, 0x21, body)));
    expect(s.header.addresses).toEqual({ source: { ip: "2001:db8::5", port: 1234 }, destination: { ip: "::1", port: 587 } });
    const mapped = [...v6Bytes([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0209]), ...v6Bytes([0, 0, 0, 0, 0, 0, 0, 1]), 0, 1, 0, 2];
    expect(done(parseProxyHeader(v2(0x21, 0x21, mapped))).header.addresses?.source.ip).toBe("::ffff:192.0.2.9");
  });

  test("LOCAL keeps the socket's addresses and skips its block whatever the family says", () => {
    const s = done(parseProxyHeader(concat(v2(0x20, 0x00, []), enc("QUIT\r\n"))));
    expect(s.header).toEqual({ version: 2, kind: "LOCAL", tlvs: 0, length: 16 });
    expect(new TextDecoder().decode(s.rest)).toBe("QUIT\r\n");
    const junk = done(parseProxyHeader(v2(0x20, 0x77, [1, 2, 3])));
    expect(junk.header.kind).toBe("LOCAL");
    expect(junk.header.length).toBe(19);
  });

  test("AF_UNSPEC and AF_UNIX under PROXY keep the socket's addresses", () => {
    expect(done(parseProxyHeader(v2(0x21, 0x00, []))).header).toEqual({ version: 2, kind: "AF_UNSPEC", tlvs: 0, length: 16 });
    const unix = done(parseProxyHeader(v2(0x21, 0x31, new Uint8Array(216))));
    expect(unix.header.kind).toBe("AF_UNIX");
    expect(unix.header.addresses).toBeUndefined();
  });

  test("TLVs are walked and ignored, including ones that claim to be addresses", () => {
    const body = [
      ...v4Block([10, 0, 0, 1], [10, 0, 0, 2], 1, 2),
      ...tlv(0x04, []), // NOOP
      ...tlv(0x02, [...enc("mx.example.org")]), // AUTHORITY
      ...tlv(0x05, [...enc("unique-id")]),
      ...tlv(0xe0, [...enc("127.0.0.1")]), // custom: never read
    ];
    const s = done(parseProxyHeader(v2(0x21, 0x11, body)));
    expect(s.header.tlvs).toBe(4);
    expect(s.header.addresses?.source).toEqual({ ip: "10.0.0.1", port: 1 });
  });

  test.each([
    ["version 1 in the v2 form", v2(0x11, 0x11, v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), "version 1"],
    ["command 2", v2(0x22, 0x11, v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), "command 2"],
    ["UDP over IPv4", v2(0x21, 0x12, v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), "datagram"],
    ["UDP over IPv6", v2(0x21, 0x22, new Uint8Array(36)), "datagram"],
    ["unknown family", v2(0x21, 0x41, new Uint8Array(12)), "not valid"],
    ["unknown transport", v2(0x21, 0x13, new Uint8Array(12)), "not valid"],
    ["length shorter than the IPv4 block", v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8]), "shorter than the TCP4 address block"],
    ["length shorter than the IPv6 block", v2(0x21, 0x21, new Uint8Array(12)), "shorter than the TCP6 address block"],
    ["a TLV that overruns the header", v2(0x21, 0x11, [...v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 0x05, 0, 10, 1, 2]), "overrun"],
    ["a truncated TLV header", v2(0x21, 0x11, [...v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 0x05, 0]), "overrun"],
    [
      "a bad signature",
      concat([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b], [0x21, 0x11, 0, 0]),
      "not a PROXY header",
    ],
  ])("refused: %s", (_name, bytes, reason) => {
    expect(errorOf(parseProxyHeader(bytes))).toContain(reason);
  });

  test("each field is judged as soon as it arrives: a bad command at byte 13, a bad family at byte 14", () => {
    // swaks 20201014's --proxy-command LOCAL: command 2 and only 15 bytes (no second length byte).
    const swaksLocal = concat(SIG, [0x22, 0x00, 0x00]);
    expect(errorOf(parseProxyHeader(swaksLocal.subarray(0, 13)))).toContain("command 2");
    expect(parseProxyHeader(concat(SIG, [0x21])).state).toBe("more");
    expect(errorOf(parseProxyHeader(concat(SIG, [0x21, 0x12])))).toContain("datagram");
    expect(parseProxyHeader(concat(SIG, [0x21, 0x11, 0])).state).toBe("more");
  });

  test("a length that lies short of the address block is refused at byte 16, without waiting", () => {
    const h = v2(0x21, 0x21, new Uint8Array(36), 20);
    expect(errorOf(parseProxyHeader(h.subarray(0, 16)))).toContain("shorter");
  });

  test("a length that lies long waits for bytes that never come (the server's time limit ends it)", () => {
    const h = v2(0x21, 0x11, v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 200);
    const r = new ProxyHeaderReader();
    expect(r.push(h).state).toBe("more");
    expect(r.buffered).toBe(h.length);
  });

  test("an oversized header is refused as soon as its length is known; the limit itself passes", () => {
    const big = v2(0x21, 0x11, [], PROXY_V2_MAX_LENGTH + 1).subarray(0, 16);
    expect(errorOf(parseProxyHeader(big))).toContain("over the limit");
    expect(errorOf(parseProxyHeader(v2(0x21, 0x11, [], 0xffff).subarray(0, 16)))).toContain("over the limit");
    const body = [...v4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), ...tlv(0xe1, Array(PROXY_V2_MAX_LENGTH - 12 - 3).fill(0))];
    expect(done(parseProxyHeader(v2(0x21, 0x11, body))).header.length).toBe(16 + PROXY_V2_MAX_LENGTH);
  });

  test("one byte at a time, with TLVs and SMTP behind it", () => {
    const h = v2(0x21, 0x11, [...v4Block([192, 0, 2, 7], [198, 51, 100, 1], 40000, 25), ...tlv(0x04, [0, 0])]);
    const all = concat(h, enc("E"));
    const r = new ProxyHeaderReader();
    const steps = [...h].map((b) => r.push(Uint8Array.of(b)));
    expect(steps.slice(0, -1).every((s) => s.state === "more")).toBe(true);
    const last = done(steps.at(-1)!);
    expect(last.header.addresses?.source).toEqual({ ip: "192.0.2.7", port: 40000 });
    expect(last.rest.length).toBe(0);
    // The same bytes in two pieces, the second carrying the client's first byte of SMTP.
    const r2 = new ProxyHeaderReader();
    expect(r2.push(all.subarray(0, 14)).state).toBe("more");
    expect([...done(r2.push(all.subarray(14))).rest]).toEqual([...enc("E")]);
  });
});

describe("the reader", () => {
  test("holds no more than the header needs, and keeps its verdict", () => {
    const r = new ProxyHeaderReader();
    expect(errorOf(r.push(enc("GET / HTTP/1.0\r\n")))).toBe("not a PROXY header");
    expect(r.buffered).toBe(0);
    expect(r.push(enc("PROXY UNKNOWN\r\n")).state).toBe("error");
    // Byte-at-a-time garbage after a good prefix: at most 106 bytes held, then refused.
    const slow = new ProxyHeaderReader();
    let last: ProxyStep = { state: "more" };
    let most = 0;
    for (let i = 0; i < 500 && last.state === "more"; i++) {
      last = slow.push(enc(i < 6 ? "PROXY "[i]! : "a"));
      most = Math.max(most, slow.buffered);
    }
    expect(last.state).toBe("error");
    expect(most).toBeLessThanOrEqual(106);
  });

  test("a big first chunk (header and pipelined SMTP) comes back whole", () => {
    const smtp = enc("EHLO x\r\nMAIL FROM:<a@b>\r\n".repeat(1000));
    const s = done(new ProxyHeaderReader().push(concat(enc("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), smtp)));
    expect(s.rest).toEqual(smtp);
  });
});

test("IPv6 text follows RFC 5952", () => {
  const v = (groups: number[]): bigint => groups.reduce((a, g) => (a << 16n) | BigInt(g), 0n);
  expect(formatV6(0n)).toBe("::");
  expect(formatV6(1n)).toBe("::1");
  expect(formatV6(v([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1]))).toBe("2001:db8:0:1::1");
  expect(formatV6(v([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe("2001:db8::1:0:0:1");
  expect(formatV6(v([1, 2, 3, 4, 5, 6, 7, 8]))).toBe("1:2:3:4:5:6:7:8");
  expect(formatV6(v([0x2001, 0, 1, 1, 1, 1, 1, 1]))).toBe("2001:0:1:1:1:1:1:1");
  expect(formatV6(v([1, 0, 0, 0, 0, 0, 0, 0]))).toBe("1::");
});
