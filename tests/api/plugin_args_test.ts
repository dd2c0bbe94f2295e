import { describe, expect, test } from "bun:test";
import { parsePluginArgs } from "qpsmtpd";

describe("parsePluginArgs", () => {
  test("pairs and flags in any order, positional words, the engine's timeout and loglevel", () => {
    const a = parsePluginArgs("p", ["quiet", "limit", "5", "/var/x", "timeout", "3", "loglevel", "-1"], {
      values: ["limit"],
      flags: ["quiet", "loud"],
      positional: [1, 1],
    });
    expect(a.positional).toEqual(["/var/x"]);
    expect(a.values).toEqual({ limit: "5", timeout: "3", loglevel: "-1" });
    expect([...a.flags]).toEqual(["quiet"]);
  });

  test("an unknown word, a key without its value, a key twice, a missing or extra positional: errors that name them", () => {
    const spec = { values: ["reject_type"] as const, flags: ["noreject"] as const };
    expect(() => parsePluginArgs("dnsbl", ["reject_tpye", "temp"], spec)).toThrow(
      'dnsbl: unknown argument "reject_tpye" (it takes: reject_type VALUE, noreject)',
    );
    expect(() => parsePluginArgs("dnsbl", ["reject_type"], spec)).toThrow('dnsbl: "reject_type" needs a value');
    expect(() => parsePluginArgs("dnsbl", ["reject_type", "a", "reject_type", "b"], spec)).toThrow("given twice");
    expect(() => parsePluginArgs("logging/file", [], { positional: [1, 1], usage: "PATH" })).toThrow(
      "logging/file: missing argument (it takes: PATH)",
    );
    expect(() => parsePluginArgs("logging/file", ["format", "json", "/x"], { positional: [1, 1], usage: "PATH" })).toThrow(
      'logging/file: unknown argument "json" (it takes: PATH)',
    );
    expect(() => parsePluginArgs("x", ["y"], {})).toThrow('x: unknown argument "y" (it takes: no arguments)');
  });
});
