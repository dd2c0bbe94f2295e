/**
 * Daemon settings: qpsmtpd-forkserver's flags, optionally preset in `smtpd.yaml` in the config
 * directory. Flags win over the file.
 * @module
 */
import * as fs from "node:fs";
import { isIP } from "node:net";
import * as os from "node:os";
import { ConfigError } from "./errors.ts";

/** One listener: an address, a port, and whether TLS comes first (port 465 style). */
export interface ListenSpec {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS: the handshake comes before the greeting. */
  readonly tls: boolean;
  /** Every connection begins with a PROXY protocol header (v1 or v2) from a trusted proxy. */
  readonly proxy?: ProxyListen;
}

/** What a PROXY listener needs: who may send the header, and how long it may take. */
export interface ProxyListen {
  /** Addresses and CIDRs (IPv4, IPv6) of the proxies; any other peer is closed unanswered. */
  readonly trusted: readonly string[];
  /** Time allowed for the whole header, from the accept. */
  readonly timeoutMs: number;
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
  /**
   * Ports, on the same addresses, whose connections begin with a PROXY header (HAProxy
   * `send-proxy`/`send-proxy-v2`); a `listen` entry `ADDR:PORT` with such a port is one too.
   * Plain SMTP (STARTTLS through the tls plugin), not implicit TLS. @default []
   */
  proxyPorts: number[];
  /** Who may send the PROXY header: addresses and CIDRs; required with proxyPorts. @default [] */
  proxyTrusted: string[];
  /** Seconds a proxy has to send the whole header. @default 10 */
  proxyTimeout: number;
  /**
   * Processes that serve connections (node:cluster), sharing the ports; 1 is one process and no
   * cluster at all. @default the number of cores
   */
  workers: number;
  /** `ADDR:PORT` for the Prometheus metrics listener (GET /metrics); none when unset. */
  metricsListen: string | undefined;
  /**
   * The control socket `qpsmtpd status` asks. @default /run/qpsmtpd/control.sock when that
   * directory can be made or written, else control.sock in the spool directory
   */
  controlSocket: string | undefined;
}

/** The cores this process may use (`os.availableParallelism`, else the CPU count). */
export function cores(): number {
  const n = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, n || 1);
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
  proxyPorts: [],
  proxyTrusted: [],
  proxyTimeout: 10,
  workers: cores(),
  metricsListen: undefined,
  controlSocket: undefined,
};

/** More workers than this is a typo, not a machine. */
export const MAX_WORKERS = 256;

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
  proxy_port: "proxyPorts",
  proxy_ports: "proxyPorts",
  proxy_trusted: "proxyTrusted",
  proxy_timeout: "proxyTimeout",
  workers: "workers",
  metrics_listen: "metricsListen",
  control_socket: "controlSocket",
};

/** A YAML parser quicker to start than the yaml package: the runtime's own (runtime.ts `nativeYamlParse`). */
export type QuickYaml = (text: string) => unknown;

/**
 * smtpd.yaml's document, read by `quick` where given; the yaml package reads what that refuses,
 * for the package's message and line, and a file that names a setting twice, which the package
 * refuses and Bun's parser would take the last of.
 */
async function parseYaml(text: string, quick: QuickYaml | undefined): Promise<unknown> {
  const keys = text.match(/^[^\s#-][^:]*(?=:)/gm) ?? [];
  if (quick && new Set(keys).size === keys.length) {
    try {
      return quick(text);
    } catch { /* the package says what is wrong, and where */ }
  }
  return (await import("yaml")).parse(text);
}

/** Reads `smtpd.yaml`; an unknown key or a wrong type is a ConfigError naming the file and line. */
export async function readSettingsFile(path: string, quick?: QuickYaml): Promise<Partial<DaemonSettings>> {
  const text = fs.readFileSync(path, "utf8");
  let doc: unknown;
  try {
    doc = await parseYaml(text, quick);
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
      case "proxyPorts":
        out[field] = list.map((v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536 ? (v as number) : bad()));
        break;
      case "limitConnections":
      case "maxFromIp":
      case "shutdownGrace":
        out[field] = Number.isInteger(value) && (value as number) >= 0 ? (value as number) : bad();
        break;
      case "user":
      case "pidFile":
      case "controlSocket":
        out[field] = typeof value === "string" ? value : bad();
        break;
      case "proxyTrusted":
        out.proxyTrusted = list.map((v) => (typeof v === "string" && isAddressOrCidr(v) ? v : bad()));
        break;
      case "proxyTimeout":
        out.proxyTimeout = typeof value === "number" && value > 0 && value <= 3600 ? value : bad();
        break;
      case "metricsListen":
        out.metricsListen = typeof value === "string" && /^\[?[^\]\s]*\]?:\d{1,5}$/.test(value) ? value : bad();
        break;
      case "workers":
        out.workers = Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_WORKERS ? (value as number) : bad();
        break;
    }
  }
  const proxyKey = "proxy_ports" in (doc as Record<string, unknown>) ? "proxy_ports" : "proxy_port";
  if (out.proxyPorts?.length && !out.proxyTrusted?.length) {
    throw new ConfigError(
      path,
      lineOf(proxyKey),
      `${proxyKey} needs proxy_trusted: the addresses of the proxies that may send the PROXY header`,
    );
  }
  const both = out.proxyPorts?.find((p) => out.tlsPorts?.includes(p));
  if (both !== undefined) {
    throw new ConfigError(path, lineOf(proxyKey), `port ${both} is in tls_ports and ${proxyKey}: a PROXY listener is plain SMTP`);
  }
  return out;
}

/** An IPv4 or IPv6 address, or one with a prefix length in range (`10.0.0.0/8`, `2001:db8::/32`). */
function isAddressOrCidr(text: string): boolean {
  const [addr, len, extra] = text.split("/");
  const family = isIP(addr ?? "");
  if (family === 0 || extra !== undefined || addr!.includes("%")) return false;
  if (len === undefined) return true;
  return /^\d{1,3}$/.test(len) && Number(len) <= (family === 4 ? 32 : 128);
}

/**
 * `ADDR[:PORT]`, `[v6]:PORT` or a bare v6 address, one listener per address and port. A port in
 * `proxyPorts` is a PROXY listener however it was named (in `ports`, `proxy_ports` or `ADDR:PORT`).
 */
export function listenSpecs(s: DaemonSettings): ListenSpec[] {
  const proxy = s.proxyPorts.length ? proxyListen(s) : undefined;
  const spec = (host: string, port: number): ListenSpec =>
    proxy && s.proxyPorts.includes(port) ? { host, port, tls: false, proxy } : { host, port, tls: false };
  const out: ListenSpec[] = [];
  for (const entry of s.listen) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? (/^([^:]+):(\d+)$/.exec(entry)) ?? [entry, entry];
    const host = m[1]!;
    const ports = m[2] ? [Number(m[2])] : [...new Set([...s.ports, ...s.proxyPorts])];
    for (const port of ports) out.push(spec(host, port));
    if (!m[2]) { for (const port of s.tlsPorts) out.push({ host, port, tls: true }); }
  }
  return out;
}

function proxyListen(s: DaemonSettings): ProxyListen {
  // readSettingsFile reports these with the file and line; this guards settings built in code.
  if (s.proxyTrusted.length === 0) throw new Error("proxy_ports needs proxy_trusted");
  const both = s.proxyPorts.find((p) => s.tlsPorts.includes(p));
  if (both !== undefined) throw new Error(`port ${both} cannot be both an implicit-TLS and a PROXY listener`);
  return { trusted: [...s.proxyTrusted], timeoutMs: s.proxyTimeout * 1000 };
}
