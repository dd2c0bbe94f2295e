import { describe, expect, test } from "bun:test";
import { Address } from "qpsmtpd";

describe("Address.parse", () => {
  const valid: Array<[string, string, string | undefined, string]> = [
    // path, user, host, format()
    ["<user@example.org>", "user", "example.org", "<user@example.org>"],
    ["<>", "", undefined, "<>"],
    ["<postmaster>", "postmaster", undefined, "<postmaster>"],
    ["<Postmaster>", "Postmaster", undefined, "<Postmaster>"],
    ["<@relay.example:user@example.org>", "user", "example.org", "<user@example.org>"],
    ["<@a.example,@b.example:user@example.org>", "user", "example.org", "<user@example.org>"],
    ['<"john doe"@example.org>', "john doe", "example.org", '<"john doe"@example.org>'],
    ['<"a\\"b"@example.org>', 'a"b', "example.org", '<"a\\"b"@example.org>'],
    ["<user@[192.0.2.1]>", "user", "[192.0.2.1]", "<user@[192.0.2.1]>"],
    ["<user@[IPv6:2001:db8::1]>", "user", "[IPv6:2001:db8::1]", "<user@[IPv6:2001:db8::1]>"],
    ["<first.last+tag@sub.example.org>", "first.last+tag", "sub.example.org", "<first.last+tag@sub.example.org>"],
    ["<user%evil.test@example.org>", "user%evil.test", "example.org", "<user%evil.test@example.org>"],
  ];
  for (const [path, user, host, formatted] of valid) {
    test(`parses ${path}`, () => {
      const a = Address.parse(path);
      expect(a).toBeDefined();
      expect(a!.user).toBe(user);
      expect(a!.host).toBe(host);
      expect(String(a)).toBe(formatted);
    });
  }

  const invalid = [
    "user@example.org", // no brackets
    "<user@example.org",
    "<user>",
    "<@example.org>",
    "<user@>",
    "<user@evil.test@example.org>",
    "<a b@example.org>",
    '<a"b@example.org>',
    "<.user@example.org>",
    "<user.@example.org>",
    "<us..er@example.org>",
    "<user@exampleXorg!>",
    "<user@example!org>",
    "<user@x:y>",
    "<user@example.org.>",
    "<user@-example.org>",
    "<user@[300.1.2.3]>",
    "<user@[1.2.3]>",
    "<user@[1.2.3.4.5]>",
    "<user@[IPv6:1::2::3]>",
    "<user@[stuff>",
    `<${"a".repeat(65)}@example.org>`,
    `<a@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.${"e".repeat(63)}.org>`,
    "<victim@evil.test\\@example.org>",
    "<user@example.org,other@evil.test>",
    "<@example.org>:user@example.org>",
  ];
  for (const path of invalid) {
    test(`refuses ${path.slice(0, 60)}`, () => {
      expect(Address.parse(path)).toBeUndefined();
    });
  }

  test("the limits count UTF-8 bytes, not characters (RFC 6531 3.3)", () => {
    const utf8 = { utf8: true };
    // 32 two-byte characters: a 64-byte local part, the most there may be; 33 are 66 bytes.
    expect(Address.parse(`<${"\u00e9".repeat(32)}@example.org>`, utf8)?.user).toBe("\u00e9".repeat(32));
    expect(Address.parse(`<${"\u00e9".repeat(33)}@example.org>`, utf8)).toBeUndefined();
    // 225 characters but 257 bytes: over the 256 of a path (253 ASCII characters are not).
    const domain = `${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.example`;
    expect(Address.parse(`<${"a".repeat(60)}@${domain}>`, utf8)).toBeDefined();
    expect(Address.parse(`<${"\u00e9".repeat(32)}@${domain}>`, utf8)).toBeUndefined();
  });

  test("address() quotes a local part that needs it, so it cannot be re-read as another address", () => {
    const a = Address.parse('<"victim@evil.test"@example.org>')!;
    expect(a.user).toBe("victim@evil.test");
    expect(a.address()).toBe('"victim@evil.test"@example.org');
  });

  test("notes live on the address, without a prototype", () => {
    const a = Address.parse("<a@example.org>")!;
    a.notes("__proto__", 1);
    expect(a.notes("__proto__")).toBe(1);
  });
});
