import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../../src/config/files.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { DEFAULT_SETTINGS, listenSpecs, readSettingsFile } from "../../src/config/settings.ts";

const dir = (): string => mkdtempSync(join(tmpdir(), "qpcfg-"));

describe("ConfigDir", () => {
  test("one value a line; comments, blanks and whitespace are dropped; lines are numbered", async () => {
    const d = dir();
    writeFileSync(join(d, "rcpthosts"), "# local domains\n\n  example.org  \n\t# indented comment\n.example.net\n");
    const c = new ConfigDir({ dirs: [d] });
    expect(c.all("rcpthosts")).toEqual(["example.org", ".example.net"]);
    expect(c.lines("rcpthosts").map((l) => l.line)).toEqual([3, 5]);
    expect(c.get("missing")).toBeUndefined();
  });

  test("each file is looked up along the search path on its own", async () => {
    const a = dir();
    const b = dir();
    writeFileSync(join(a, "me"), "first.example\n");
    writeFileSync(join(b, "me"), "second.example\n");
    writeFileSync(join(b, "rcpthosts"), "only-in-b.example\n");
    const c = new ConfigDir({ dirs: [a, b] });
    expect(c.get("me")).toBe("first.example");
    expect(c.get("rcpthosts")).toBe("only-in-b.example");
  });

  test("$include splices a file or a directory (sorted, dot files skipped); cycles are reported", async () => {
    const d = dir();
    mkdirSync(join(d, "hosts.d"));
    writeFileSync(join(d, "hosts.d", "b"), "b.example\n");
    writeFileSync(join(d, "hosts.d", "a"), "a.example\n");
    writeFileSync(join(d, "hosts.d", ".hidden"), "hidden.example\n");
    writeFileSync(join(d, "extra"), "extra.example\n");
    writeFileSync(join(d, "rcpthosts"), "first.example\n$include extra\n$include hosts.d\nlast.example\n");
    const warnings: string[] = [];
    const c = new ConfigDir({ dirs: [d], warn: (m) => warnings.push(m) });
    expect(c.all("rcpthosts")).toEqual(["first.example", "extra.example", "a.example", "b.example", "last.example"]);
    writeFileSync(join(d, "loop1"), "x\n$include loop2\n");
    writeFileSync(join(d, "loop2"), "y\n$include loop1\n");
    expect(c.all("loop1")).toEqual(["x", "y"]);
    expect(warnings.join()).toContain("circular");
  });

  test("a change on disk is seen within a second, without a restart", async () => {
    const d = dir();
    const f = join(d, "databytes");
    writeFileSync(f, "1000\n");
    let now = 1_000_000;
    const c = new ConfigDir({ dirs: [d], now: () => now });
    expect(c.int("databytes", 0)).toBe(1000);
    writeFileSync(f, "2000000\n");
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    now += 999;
    expect(c.int("databytes", 0)).toBe(1000); // trusted for up to a second
    now += 2;
    expect(c.int("databytes", 0)).toBe(2000000);
    writeFileSync(f, "3\n");
    utimesSync(f, new Date(), new Date(Date.now() + 10000));
    c.invalidate();
    expect(c.int("databytes", 0)).toBe(3);
  });

  test("a bad number is an error naming the file and line", async () => {
    const d = dir();
    writeFileSync(join(d, "databytes"), "# size\n10MB\n");
    const c = new ConfigDir({ dirs: [d] });
    expect(() => c.int("databytes", 0)).toThrow(ConfigError);
    expect(() => c.int("databytes", 0)).toThrow(`${join(d, "databytes")}:2: databytes must be a whole number, not "10MB"`);
    writeFileSync(join(d, "tls_before_auth"), "maybe\n");
    expect(() => c.bool("tls_before_auth")).toThrow(":1:");
  });
});

describe("smtpd.yaml", () => {
  test("settings are read and listeners expanded", async () => {
    const d = dir();
    const f = join(d, "smtpd.yaml");
    writeFileSync(f, "listen: [127.0.0.1, '[::1]']\nport: [25, 587]\ntls_port: 465\nmax_from_ip: 3\n");
    const s = { ...DEFAULT_SETTINGS, ...await readSettingsFile(f) };
    expect(s.maxFromIp).toBe(3);
    expect(listenSpecs(s)).toEqual([
      { host: "127.0.0.1", port: 25, tls: false },
      { host: "127.0.0.1", port: 587, tls: false },
      { host: "127.0.0.1", port: 465, tls: true },
      { host: "::1", port: 25, tls: false },
      { host: "::1", port: 587, tls: false },
      { host: "::1", port: 465, tls: true },
    ]);
  });

  test("an unknown key or a bad value names the file and line", async () => {
    const d = dir();
    const f = join(d, "smtpd.yaml");
    writeFileSync(f, "port: 25\nlisten_adress: 0.0.0.0\n");
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: unknown setting "listen_adress"`);
    writeFileSync(f, "port: 25\nmax_from_ip: lots\n");
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: bad value for max_from_ip`);
    writeFileSync(f, "port: [25\n");
    await expect(readSettingsFile(f)).rejects.toThrow(ConfigError);
  });
});
