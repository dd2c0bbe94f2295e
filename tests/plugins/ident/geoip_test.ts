/**
 * ident/geoip on MaxMind DB files written by MaxMind's own writer (Debian's
 * libmaxmind-db-writer-perl; no GeoLite2 download): notes, distance and too_far, headers, the
 * ASN database, IPv6, and no database at all.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OK } from "qpsmtpd";
import { distanceKm } from "../../../plugins/ident/geoip.ts";
import { TestSession } from "../../../src/testing/harness.ts";
import { type MmdbEntry, writeMmdb } from "../../helpers/mmdb.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const place = (iso: string, country: string, continent: string, city: string, lat: number, lon: number) => ({
  country: { iso_code: iso, names: { en: country } },
  continent: { code: continent },
  city: { names: { en: city } },
  location: { latitude: lat, longitude: lon },
});

const CITIES: MmdbEntry[] = [
  ["81.2.69.0/24", place("GB", "United Kingdom", "EU", "London", 51.5142, -0.0931)],
  ["216.160.83.0/24", place("US", "United States", "NA", "Milton", 47.2513, -122.3149)],
  ["89.160.20.0/24", place("SE", "Sweden", "EU", "Linköping", 58.4167, 15.6167)],
  ["2a01:4f8::/32", place("DE", "Germany", "EU", "Berlin", 52.52, 13.405)],
];

function dbDir(cities = CITIES, asn = true): string {
  const dir = mkdtempSync(join(tmpdir(), "qpgeo-"));
  writeMmdb(join(dir, "GeoLite2-City.mmdb"), "GeoLite2-City", cities);
  if (asn) {
    writeMmdb(join(dir, "GeoLite2-ASN.mmdb"), "GeoLite2-ASN", [["81.2.69.0/24", {
      autonomous_system_number: 20712,
      autonomous_system_organization: "Andrews & Arnold",
    }]]);
  }
  return dir;
}

async function message(t: TestSession): Promise<string> {
  let header = "";
  t.mockHook("queue", (txn) => ((header = txn.header()?.as_string() ?? ""), [OK, "kept"]));
  await t.command("EHLO c");
  await t.command("MAIL FROM:<a@example.net>");
  t.mockHook("rcpt", () => OK);
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  expect((await t.data("Subject: hi\n\nbody\n")).code).toBe(250);
  return header;
}

describe("ident/geoip", () => {
  const dir = dbDir();

  test("notes country, name, continent, city and ASN; logs qpsmtpd's line; heads the message", async () => {
    const t = await TestSession.start({ plugins: [`ident/geoip db_dir ${dir}`], remoteIp: "81.2.69.160" });
    const c = t.connection;
    expect([c.notes("geoip_country"), c.notes("geoip_country_name"), c.notes("geoip_continent"), c.notes("geoip_city")]).toEqual([
      "GB",
      "United Kingdom",
      "EU",
      "London",
    ]);
    expect(c.notes("geoip_asn")).toBe(20712);
    expect(c.notes("geoip_distance")).toBeUndefined(); // no `distance` argument
    expect(t.logs.some((l) => l.hook === "connect" && l.message === "EU, GB, London")).toBe(true);
    const header = await message(t);
    expect(header).toStartWith("X-GeoIP-ASN: 20712\nX-GeoIP-City: London\nX-GeoIP-Continent: EU\nX-GeoIP-Country: GB\n");
  });

  test("distance from this server's address, and too_far costs karma", async () => {
    const line = `ident/geoip db_dir ${dir} distance 89.160.20.112 too_far 5000`;
    const far = await TestSession.start({ plugins: [line], remoteIp: "216.160.83.56" });
    const km = far.connection.notes("geoip_distance");
    expect(km).toBe(distanceKm([58.4167, 15.6167], [47.2513, -122.3149]));
    expect(km).toBeGreaterThan(7000);
    expect(km).toBeLessThan(8000);
    expect(far.connection.notes("karma")).toBe(-1);
    expect(far.logs.some((l) => l.message === `NA, US, Milton, \t${km} km`)).toBe(true);
    const near = await TestSession.start({ plugins: [line], remoteIp: "81.2.69.1" });
    expect(near.connection.notes("geoip_distance")).toBeLessThan(5000);
    expect(near.connection.notes("karma")).toBeUndefined();
  });

  test("IPv6 clients; unknown, local and private addresses get no notes; add_headers false", async () => {
    const v6 = await TestSession.start({ plugins: [`ident/geoip db_dir ${dir} add_headers false`], remoteIp: "2a01:4f8:1:2::25" });
    expect(v6.connection.notes("geoip_city")).toBe("Berlin");
    expect(await message(v6)).not.toContain("X-GeoIP");
    for (const ip of ["192.0.2.9", "127.0.0.1", "10.1.2.3"]) {
      const t = await TestSession.start({ plugins: [`ident/geoip db_dir ${dir}`], remoteIp: ip });
      expect(t.connection.notes("geoip_country")).toBeUndefined();
    }
  });

  test("no database: no notes, mail goes on; qpsmtpd check reports it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "qpgeo-"));
    const t = await TestSession.start({
      plugins: [`ident/geoip db_dir ${empty}`, "rcpt_ok"],
      remoteIp: "81.2.69.160",
      config: { rcpthosts: "example.org" },
    });
    expect(t.connection.notes("geoip_country")).toBeUndefined();
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
    const mod = await import("../../../plugins/ident/geoip.ts");
    expect(mod.check!.call({ data: { dirs: [empty] } } as never, undefined as never)).toEqual([
      `no GeoIP2 or GeoLite2 database (.mmdb) in ${empty}: ident/geoip does nothing`,
    ]);
  });

  test("bad arguments stop start-up", async () => {
    expect(TestSession.start({ plugins: [`ident/geoip db_dir ${dir} distance nowhere`] })).rejects.toThrow(
      "distance wants this server's IP address",
    );
    expect(TestSession.start({ plugins: [`ident/geoip db_dir ${dir} too_far far`] })).rejects.toThrow("too_far wants kilometres");
  });
});

describe("ident/geoip: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("ident/geoip db_dri /usr/share/GeoIP", "db_dri");
  });
});
