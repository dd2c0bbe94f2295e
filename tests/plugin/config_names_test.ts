/**
 * The config names `qpsmtpd check` knows stay in step with the code: every literal name the core
 * or a built-in reads (`config("x")`, `config_all("x")`, `config_path("x")`, `configDir.get("x")`
 * and friends) is known, and every plugin EXPECTED_FILES names is a built-in.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EXPECTED_FILES, isKnownConfig, isLeftover, nearestKnown, QPSMTPD_ONLY_CONFIG } from "../../src/plugin/config_names.ts";
import { BUILTINS } from "../../plugins/mod.ts";

const ROOT = resolve(import.meta.dir, "../..");

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) =>
    join(ROOT, dir, f)
  );
}

/** Literal config names read in `text`. */
export function configReads(text: string): string[] {
  const out = new Set<string>();
  const re =
    /\b(?:config|config_all|config_path|configDir\.(?:get|int|bool|lines|all|path)|config\.(?:get|int|bool|lines|all|path))\(\s*"([A-Za-z0-9_.-]+)"/g;
  for (const m of text.matchAll(re)) out.add(m[1]!);
  return [...out];
}

describe("known config names", () => {
  test("the reader of names sees the forms the code uses", () => {
    expect(configReads('this.qp.config_all("badhelo"); server.config("tls_ciphers"); host.configDir.int("max_rcpt", 1)')).toEqual([
      "badhelo",
      "tls_ciphers",
      "max_rcpt",
    ]);
  });

  test("every name the core and the built-ins read is known", () => {
    const unknown: string[] = [];
    for (const f of [...files("src"), ...files("plugins")]) {
      if (f.includes("/src/testing/") || f.includes("/src/cli/")) continue;
      for (const n of configReads(readFileSync(f, "utf8"))) if (!isKnownConfig(n)) unknown.push(`${f.slice(ROOT.length + 1)}: ${n}`);
    }
    // A failure here: add the name to CORE_CONFIG or PLUGIN_CONFIG in src/plugin/config_names.ts.
    expect(unknown).toEqual([]);
  });

  test("expected files belong to built-ins; qpsmtpd-only names are not also known", () => {
    for (const p of Object.keys(EXPECTED_FILES)) expect(BUILTINS[p]).toBeDefined();
    for (const n of Object.keys(QPSMTPD_ONLY_CONFIG)) expect(isKnownConfig(n)).toBe(false);
  });

  test("typos find their name; leftovers are recognised", () => {
    expect(nearestKnown("rcpthost")).toBe("rcpthosts");
    expect(nearestKnown("relayclient")).toBe("relayclients");
    expect(nearestKnown("badmailform")).toBe("badmailfrom");
    expect(nearestKnown("something_else_entirely")).toBeUndefined();
    for (const f of ["plugins~", "plugins.orig", "rcpthosts.dpkg-old", "README", "badhelo.bak"]) expect(isLeftover(f)).toBe(true);
    expect(isLeftover("rcpthosts")).toBe(false);
  });
});
