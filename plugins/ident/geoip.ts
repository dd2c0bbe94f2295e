/**
 * ident/geoip: where the client is, from MaxMind's GeoIP2/GeoLite2 databases (the MaxMind DB
 * format, read with mmdb-lib), kept in connection notes for other plugins (greylisting, karma,
 * your own), logged, and added to the message as headers.
 *
 * Databases, looked for in `db_dir`: a city database (`GeoIP2-City.mmdb`, `GeoLite2-City.mmdb`),
 * else a country one (`GeoIP2-Country.mmdb`, `GeoLite2-Country.mmdb`), and an ASN database
 * (`GeoLite2-ASN.mmdb`, `GeoIP2-ASN.mmdb`) when present. qpsmtpd's legacy `.dat` files
 * (Geo::IP) are not read. A database file that changes (geoipupdate) is read again, checked
 * at most once a minute.
 *
 * Hooks: connect (the lookup; local and private addresses are skipped), data_post (headers).
 * Arguments: `db_dir DIR` (default /usr/local/share/GeoIP, qpsmtpd's; when it has no database,
 * /usr/share/GeoIP and /var/lib/GeoIP, where Debian's geoipupdate writes, are tried),
 * `distance IP` (this server's public address: the great-circle distance to the client is
 * computed from the two cities' coordinates), `too_far KM` (karma -1 past it),
 * `add_headers true|false` (default true: `X-GeoIP-Country`, `X-GeoIP-Continent`,
 * `X-GeoIP-City`, `X-GeoIP-ASN` at the top of the header). Any other word stops start-up.
 * Notes: connection `geoip_country` (2-letter code), `geoip_country_name`, `geoip_continent`
 * (2-letter code), `geoip_city`, `geoip_distance` (km), `geoip_asn` (network number).
 * Log: `EU, GB, London, 	587 km` at LOGINFO, `skip, no results` when the address is unknown.
 * Failure policy: fail open. Without a readable database the plugin logs it at LOGERROR and
 * sets no notes; mail goes on (`qpsmtpd check` reports it). Lookups are in memory: nothing to
 * wait for.
 */
import * as fs from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { type CityResponse, Reader } from "mmdb-lib";
import { type Check, DECLINED, type Hooks, type Init, LOGERROR, LOGINFO, LOGNOTICE, parsePluginArgs, type PluginContext } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** The client's country, ISO 3166 two letters (ident/geoip). */
    geoip_country: string;
    /** The client's country, in English. */
    geoip_country_name: string;
    /** The client's continent code (EU, NA, …). */
    geoip_continent: string;
    /** The client's city, in English. */
    geoip_city: string;
    /** Kilometres between this server (the `distance` argument) and the client. */
    geoip_distance: number;
    /** The client's autonomous system number. */
    geoip_asn: number;
  }
}

interface Db {
  path: string;
  mtimeMs: number;
  reader: Reader<CityResponse> | undefined;
}

interface AsnRecord {
  autonomous_system_number?: number;
}

interface Data {
  dirs: string[];
  place?: Db;
  asn?: Db;
  /** Last time the files were looked at, server clock. */
  checkedAt: number;
  distanceFrom?: string;
  tooFar?: number;
  headers: boolean;
  /** This server's coordinates, once known. */
  here?: [number, number] | null;
}

const PLACE_FILES = ["GeoIP2-City.mmdb", "GeoLite2-City.mmdb", "GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb"];
const ASN_FILES = ["GeoLite2-ASN.mmdb", "GeoIP2-ASN.mmdb"];
const FALLBACK_DIRS = ["/usr/share/GeoIP", "/var/lib/GeoIP"];
const RECHECK_MS = 60_000;
const EARTH_KM = 6378; // qpsmtpd's radius

function find(dirs: readonly string[], names: readonly string[]): string | undefined {
  for (const d of dirs) for (const n of names) if (fs.existsSync(join(d, n))) return join(d, n);
  return undefined;
}

/** Opens (or reopens, when the file changed) a database; undefined when there is none. */
type Log = PluginContext["log"];

function open(log: Log, old: Db | undefined, path: string | undefined): Db | undefined {
  if (!path) return undefined;
  try {
    const st = fs.statSync(path);
    if (old && old.path === path && old.mtimeMs === st.mtimeMs) return old;
    const reader = new Reader<CityResponse>(fs.readFileSync(path));
    log(LOGINFO, `using ${path} (${reader.metadata.databaseType})`);
    return { path, mtimeMs: st.mtimeMs, reader };
  } catch (e) {
    log(LOGERROR, `cannot read ${path}: ${(e as Error).message}`);
    return old;
  }
}

function load(log: Log, d: Partial<Data>, now: number): void {
  d.place = open(log, d.place, find(d.dirs ?? [], PLACE_FILES));
  d.asn = open(log, d.asn, find(d.dirs ?? [], ASN_FILES));
  d.checkedAt = now;
}

export const init: Init<Data> = function (server, ...args) {
  const opt = parsePluginArgs("ident/geoip", args, { values: ["db_dir", "distance", "too_far", "add_headers"] }).values;
  const dir = opt["db_dir"] ?? "/usr/local/share/GeoIP";
  const dirs = (opt["db_dir"] !== undefined || find([dir], PLACE_FILES)) ? [dir] : [dir, ...FALLBACK_DIRS];
  if (opt["distance"] !== undefined && !isIP(opt["distance"])) {
    throw new Error(`ident/geoip: distance wants this server's IP address, not "${opt["distance"]}"`);
  }
  if (opt["too_far"] !== undefined && !/^\d+(\.\d+)?$/.test(opt["too_far"])) {
    throw new Error(`ident/geoip: too_far wants kilometres, not "${opt["too_far"]}"`);
  }
  Object.assign(this.data, {
    dirs,
    checkedAt: 0,
    headers: !/false/i.test(opt["add_headers"] ?? "true"),
    ...(opt["distance"] ? { distanceFrom: opt["distance"] } : {}),
    ...(opt["too_far"] ? { tooFar: Number(opt["too_far"]) } : {}),
  });
  load((l, ...m) => this.log(l, ...m), this.data, server.now());
  if (!this.data.place?.reader) this.log(LOGERROR, `no GeoIP2 or GeoLite2 database (.mmdb) in ${dirs.join(", ")}: no lookups`);
};

/** Loopback, private, link-local and other addresses no database places. */
function isLocal(ip: string): boolean {
  return /^(127\.|10\.|192\.168\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|0\.)/.test(ip) ||
    /^(::1?$|fe[89ab][0-9a-f]:|f[cd][0-9a-f]{2}:)/i.test(ip);
}

/** Great-circle distance in km, as qpsmtpd computes it (a sphere of radius 6378 km). */
export function distanceKm(a: [number, number], b: [number, number]): number {
  const rad = (deg: number) => (deg * Math.PI) / 180;
  const [lat1, lon1, lat2, lon2] = [rad(a[0]), rad(a[1]), rad(b[0]), rad(b[1])];
  const c = Math.sin(lat1) * Math.sin(lat2) + Math.cos(lat1) * Math.cos(lat2) * Math.cos(lon2 - lon1);
  return Math.round(EARTH_KM * Math.acos(Math.min(1, Math.max(-1, c))));
}

function coordinates(r: CityResponse | null | undefined): [number, number] | undefined {
  const l = r?.location;
  return l && typeof l.latitude === "number" && typeof l.longitude === "number" ? [l.latitude, l.longitude] : undefined;
}

export const hook_connect: Hooks<Data>["connect"] = function () {
  const d = this.data;
  const now = this.server.now();
  if (now - d.checkedAt >= RECHECK_MS) load((l, ...m) => this.log(l, ...m), d, now);
  const ip = this.connection.remote_ip;
  const reader = d.place?.reader;
  if (!reader || isLocal(ip)) return DECLINED;
  const c = this.connection;
  let r: CityResponse | null;
  try {
    r = reader.get(ip);
  } catch (e) {
    this.log(LOGERROR, `lookup of ${ip} failed: ${(e as Error).message}`);
    return DECLINED;
  }
  const country = r?.country ?? r?.registered_country;
  if (!r || !country?.iso_code) {
    this.log(LOGINFO, "skip, no results");
    return DECLINED;
  }
  c.notes("geoip_country", country.iso_code);
  if (country.names?.en) c.notes("geoip_country_name", country.names.en);
  if (r.continent?.code) c.notes("geoip_continent", r.continent.code);
  if (r.city?.names?.en) c.notes("geoip_city", r.city.names.en);
  const asn = (d.asn?.reader as Reader<AsnRecord & CityResponse> | undefined)?.get(ip)?.autonomous_system_number ??
    r.traits?.autonomous_system_number;
  if (asn !== undefined) c.notes("geoip_asn", asn);
  const parts = [r.continent?.code, country.iso_code, r.city?.names?.en].filter((x): x is string => !!x);
  if (d.distanceFrom) {
    if (d.here === undefined) {
      d.here = coordinates(reader.get(d.distanceFrom)) ?? null;
      if (!d.here) this.log(LOGNOTICE, `could not get this server's location from ${d.distanceFrom}`);
    }
    const there = coordinates(r);
    if (d.here && there) {
      const km = distanceKm(d.here, there);
      c.notes("geoip_distance", km);
      parts.push(`\t${km} km`);
      if (d.tooFar !== undefined && km > d.tooFar) this.adjust_karma(-1);
    }
  }
  this.log(LOGINFO, parts.join(", "));
  return DECLINED;
};

export const hook_data_post: Hooks<Data>["data_post"] = function (txn) {
  const header = txn.header();
  if (!this.data.headers || !header) return DECLINED;
  const c = this.connection;
  const values: Array<[string, unknown]> = [
    ["X-GeoIP-Country", c.notes("geoip_country")],
    ["X-GeoIP-Continent", c.notes("geoip_continent")],
    ["X-GeoIP-City", c.notes("geoip_city")],
    ["X-GeoIP-ASN", c.notes("geoip_asn")],
  ];
  for (const [tag, value] of values) {
    if (value === undefined || value === "") continue;
    header.delete(tag);
    header.add(tag, String(value), 0);
  }
  return DECLINED;
};

export const check: Check<Data> = function () {
  return this.data.place?.reader
    ? []
    : [`no GeoIP2 or GeoLite2 database (.mmdb) in ${this.data.dirs.join(", ")}: ident/geoip does nothing`];
};
