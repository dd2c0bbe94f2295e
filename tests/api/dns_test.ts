/** nodeStyleResolve: the server's resolver in node:dns's shape, as mailauth asks it. */
import { describe, expect, test } from "bun:test";
import { DnsError, nodeStyleResolve, type Resolver } from "../../src/api/dns.ts";

const zone: Record<string, string[]> = { "a.example TXT": ["v=spf1 -all"], "a.example A": ["192.0.2.1"] };
const resolver = {
  resolve: (name: string, type: string) => {
    const hit = zone[`${name} ${type}`];
    return hit ? Promise.resolve(hit) : Promise.reject(new DnsError(name === "slow.example" ? "TIMEOUT" : "NXDOMAIN", `${name}: no`));
  },
} as unknown as Resolver;

describe("nodeStyleResolve", () => {
  const resolve = nodeStyleResolve(resolver);
  test("answers as node:dns does: TXT records as lists of strings, a trailing dot ignored", async () => {
    expect(await resolve("a.example.", "TXT")).toEqual([["v=spf1 -all"]]);
    expect(await resolve("a.example", "A")).toEqual(["192.0.2.1"]);
  });
  test("errors carry node:dns's codes; names and types it cannot ask are refused before any lookup", async () => {
    await expect(resolve("b.example", "A")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(resolve("slow.example", "A")).rejects.toMatchObject({ code: "ETIMEOUT" });
    await expect(resolve("a..example", "A")).rejects.toMatchObject({ code: "EBADNAME" });
    await expect(resolve("a.example", "SRV")).rejects.toMatchObject({ code: "ENOTIMP" });
  });
});

describe("DnsError", () => {
  test("an Error with its code, whether asking again may help, and a one-line stack (no trace is taken for an answer)", async () => {
    const nx = new DnsError("NXDOMAIN", "b.example does not exist");
    expect(nx).toBeInstanceOf(Error);
    expect([nx.name, nx.code, nx.message, nx.temporary]).toEqual(["DnsError", "NXDOMAIN", "b.example does not exist", false]);
    expect(nx.stack).toBe("DnsError: b.example does not exist");
    expect(new DnsError("TIMEOUT", "x").temporary).toBe(true);
    // The limit on stack traces is put back: other errors keep theirs.
    expect(new Error("elsewhere").stack).toContain("dns_test.ts");
    const coded = await nodeStyleResolve(resolver)("b.example", "A").catch((e: Error) => e);
    expect([(coded as Error).stack, (coded as { code?: string }).code]).toEqual(["Error: b.example: no", "ENOTFOUND"]);
  });
});
