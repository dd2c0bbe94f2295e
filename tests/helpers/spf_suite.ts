/**
 * The openspf RFC 7208 conformance suite (`rfc7208-tests.yml`, 203 cases), read from Debian's
 * python3-spf package (never copied into this repository), and its zone data turned into
 * `TestDnsServer` zones with the semantics of pyspf's own driver (testspf.py).
 */
import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { parseAllDocuments } from "yaml";
import type { Zone } from "./dns_server.ts";

/** Where python3-spf installs the suite (tools/debian-packages lists the package). */
export const SUITE_PATH = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz";

export interface SuiteCase {
  readonly id: string;
  readonly spec: string;
  readonly helo: string;
  readonly host: string;
  /** The envelope sender; "" for `<>`. */
  readonly mailfrom: string;
  /** Acceptable results, the preferred one first. */
  readonly results: readonly string[];
  /** The expected `exp=` text on fail; "DEFAULT" means the receiver's own. */
  readonly explanation?: string;
}

export interface Scenario {
  readonly description: string;
  readonly zone: Zone;
  readonly cases: readonly SuiteCase[];
}

const TYPES = ["A", "AAAA", "MX", "TXT", "PTR", "NS", "CNAME"];

/**
 * One scenario's zone. As in testspf.py: a name's SPF records are also served as TXT unless it
 * has TXT records of its own (`TXT: NONE` counts as having them); a `TIMEOUT` entry makes every
 * type without a record before it time out (the server never answers); `TYPE: TIMEOUT` makes
 * that type time out.
 */
export function zoneOf(zonedata: Record<string, unknown[] | null>): Zone {
  const zone: Zone = {};
  for (const [name, entries] of Object.entries(zonedata)) {
    const list: Array<"TIMEOUT" | [string, unknown]> = [];
    const generated: Array<[string, unknown]> = [];
    let generate = true;
    for (const entry of entries ?? []) {
      if (entry === "TIMEOUT") {
        list.push("TIMEOUT");
        continue;
      }
      const [type, value] = Object.entries(entry as Record<string, unknown>)[0]!;
      if (type === "TXT") generate = false;
      else if (type === "SPF" && generate) generated.push(["TXT", value]);
      if (value !== "NONE") list.push([type, value]);
    }
    if (generate) list.push(...generated);
    const records: Record<string, unknown[]> = {};
    const drop: string[] = [];
    for (const type of TYPES) {
      for (const item of list) {
        if (item === "TIMEOUT") {
          if (!records[type]) drop.push(type);
          break;
        }
        if (item[0] !== type) continue;
        if (item[1] === "TIMEOUT") {
          drop.push(type);
          break;
        }
        (records[type] ??= []).push(item[1]);
      }
    }
    zone[name.toLowerCase()] = { ...records, ...(drop.length ? { drop } : {}) } as Zone[string];
  }
  return zone;
}

/** Every scenario of the suite; undefined when python3-spf is not installed. */
export function loadSuite(path = SUITE_PATH): Scenario[] | undefined {
  if (!existsSync(path)) return undefined;
  const text = gunzipSync(readFileSync(path)).toString("utf8");
  return parseAllDocuments(text).map((d) => {
    const doc = d.toJS() as { description: string; zonedata?: Record<string, unknown[]>; tests: Record<string, Record<string, unknown>> };
    const cases = Object.entries(doc.tests).map(([id, t]): SuiteCase => ({
      id,
      spec: String(t["spec"] ?? ""),
      helo: String(t["helo"] ?? ""),
      host: String(t["host"]),
      mailfrom: String(t["mailfrom"] ?? ""),
      results: ([] as string[]).concat(t["result"] as string | string[]),
      ...(t["explanation"] !== undefined ? { explanation: String(t["explanation"]) } : {}),
    }));
    return { description: doc.description, zone: zoneOf(doc.zonedata ?? {}), cases };
  });
}

/** Whether `got` (and its explanation) is what the case expects. */
export function conforms(c: SuiteCase, got: string, explanation: string | undefined): boolean {
  if (!c.results.includes(got)) return false;
  if (got !== "fail" || c.explanation === undefined) return true;
  // "DEFAULT": the domain's exp= gives no text, so the receiver's own explanation is used.
  return c.explanation === "DEFAULT" ? explanation === undefined : explanation === c.explanation;
}
