/**
 * Daemon settings: qpsmtpd-forkserver's flags, optionally preset in `smtpd.yaml` in the config
 * directory. Flags win over the file.
 * @module
 */
import * as fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./errors.ts";

/** One listener: an address, a port, and whether TLS comes first (port 465 style). */
export interface ListenSpec {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS: the handshake comes before the greeting. */
  readonly tls: boolean;
}

export interface DaemonSettings {
  /** Addresses to listen on. @default ["0.0.0.0"] */
  listen: string[];
  /** Ports for plain SMTP (STARTTLS when the tls plugin is loaded). @default [2525] */
  ports: number[];
  /** Ports with implicit TLS, on the same addresses. @default [] */
  tlsPorts: number[];
  /** Connections at once: one process holds thousands. @default 1000 */
  limitConnections: number;
  /** Connections at once from one IP. @default 20 */
  maxFromIp: number;
  /** User to run as after binding (only when started as root). */
  user: string | undefined;
  pidFile: string | undefined;
  /** Seconds that open transactions get to finish on SIGTERM. @default 30 */
  shutdownGrace: number;
}

export const DEFAULT_SETTINGS: DaemonSettings = {
  listen: ["0.0.0.0"],
  ports: [2525],
  tlsPorts: [],
  limitConnections: 1000,
  maxFromIp: 20,
  user: undefined,
  pidFile: undefined,
  shutdownGrace: 30,
};

const KEYS: Record<string, keyof DaemonSettings> = {
  listen: "listen",
  "listen-address": "listen",
  port: "ports",
  ports: "ports",
  tls_port: "tlsPorts",
  tls_ports: "tlsPorts",
  "limit-connections": "limitConnections",
  limit_connections: "limitConnections",
  "max-from-ip": "maxFromIp",
  max_from_ip: "maxFromIp",
  user: "user",
  "pid-file": "pidFile",
  pid_file: "pidFile",
  shutdown_grace: "shutdownGrace",
};

/** Reads `smtpd.yaml`; an unknown key or a wrong type is a ConfigError naming the file and line. */
export function readSettingsFile(path: string): Partial<DaemonSettings> {
  const text = fs.readFileSync(path, "utf8");
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    const line = (e as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line ?? 0;
    throw new ConfigError(path, line, `not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(path, 1, "expected a mapping of settings");
  const lineOf = (key: string): number => {
    const i = text.split("\n").findIndex((l) => l.trimStart().startsWith(`${key}:`));
    return i + 1;
  };
  const out: Partial<DaemonSettings> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const field = KEYS[key];
    if (!field) throw new ConfigError(path, lineOf(key), `unknown setting "${key}"`);
    const list = Array.isArray(value) ? value : [value];
    const bad = (): never => {
      throw new ConfigError(path, lineOf(key), `bad value for ${key}: ${JSON.stringify(value)}`);
    };
    switch (field) {
      case "listen":
        out.listen = list.map((v) => (typeof v === "string" ? v : bad()));
        break;
      case "ports":
      case "tlsPorts":
        out[field] = list.map((v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536 ? (v as number) : bad()));
        break;
      case "limitConnections":
      case "maxFromIp":
      case "shutdownGrace":
        out[field] = Number.isInteger(value) && (value as number) >= 0 ? (value as number) : bad();
        break;
      case "user":
      case "pidFile":
        out[field] = typeof value === "string" ? value : bad();
        break;
    }
  }
  return out;
}

/** `ADDR[:PORT]`, `[v6]:PORT` or a bare v6 address, one listener per address and port. */
export function listenSpecs(s: DaemonSettings): ListenSpec[] {
  const out: ListenSpec[] = [];
  for (const entry of s.listen) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? (/^([^:]+):(\d+)$/.exec(entry)) ?? [entry, entry];
    const host = m[1]!;
    const ports = m[2] ? [Number(m[2])] : s.ports;
    for (const port of ports) out.push({ host, port, tls: false });
    if (!m[2]) { for (const port of s.tlsPorts) out.push({ host, port, tls: true }); }
  }
  return out;
}
