/**
 * What one serving process counts: its connections, transactions and messages, plugin call
 * times and errors, DNS lookups, store operations and TLS handshakes (Prometheus names), and
 * the messages accepted in the last minute and hour for `qpsmtpd status`. The resolver and the
 * store are counted by wrapping them, so neither knows about metrics.
 * @module
 */
import type { MxRecord, RecordType, Resolver } from "../api/dns.ts";
import type { Store } from "../api/store.ts";
import { Metrics } from "./metrics.ts";
import { EventWindow } from "./window.ts";

export class ServerMetrics {
  readonly registry = new Metrics();
  readonly connectionsOpen = this.registry.gauge("qpsmtpd_connections_open", "Sessions open now");
  readonly connections = this.registry.counter("qpsmtpd_connections_total", "Connections that became sessions");
  readonly refused = this.registry.counter(
    "qpsmtpd_connections_refused_total",
    "Connections refused before a session, by reason (limit, per_ip, pre_connection, shutdown, proxy, tls)",
  );
  readonly transactions = this.registry.counter("qpsmtpd_transactions_total", "Transactions begun (a MAIL accepted)");
  readonly messages = this.registry.counter(
    "qpsmtpd_messages_total",
    "Messages answered after their data, by reply class (2xx, 4xx, 5xx) and the plugin that decided",
  );
  readonly receivedBytes = this.registry.counter("qpsmtpd_received_bytes_total", "Message bytes received by DATA and BDAT");
  readonly pluginCalls = this.registry.histogram("qpsmtpd_plugin_call_seconds", "Time of each plugin call, by hook and plugin");
  readonly pluginErrors = this.registry.counter(
    "qpsmtpd_plugin_errors_total",
    "Plugin calls that threw, returned nonsense or ran past their time limit, by plugin and kind",
  );
  readonly dnsLookups = this.registry.counter("qpsmtpd_dns_lookups_total", "DNS lookups, by record type");
  readonly dnsFailures = this.registry.counter("qpsmtpd_dns_failures_total", "DNS lookups that failed, by record type and error");
  readonly storeOps = this.registry.counter("qpsmtpd_store_operations_total", "Store operations, by operation");
  readonly storeErrors = this.registry.counter("qpsmtpd_store_errors_total", "Store operations that failed, by operation");
  readonly tlsHandshakes = this.registry.counter("qpsmtpd_tls_handshakes_total", "TLS handshakes, by kind (starttls, implicit) and result");
  /** Messages accepted (2xx after the data), for the last minute and hour. */
  readonly accepted = new EventWindow();
  /** Plugin errors by plugin, for `qpsmtpd status`. */
  readonly errorsByPlugin = new Map<string, number>();

  /** Each hook's and plugin's series, looked up by two maps: no key string is built per call. */
  readonly #calls = new Map<string, Map<string, { observe(value: number): void }>>();

  /** A plugin call ended: its time, and whether it failed (`kind`: threw, invalid, timeout). */
  pluginCall(hook: string, plugin: string, seconds: number, failed?: string): void {
    let byPlugin = this.#calls.get(hook);
    if (!byPlugin) this.#calls.set(hook, byPlugin = new Map());
    let c = byPlugin.get(plugin);
    if (!c) byPlugin.set(plugin, c = this.pluginCalls.child({ hook, plugin }));
    c.observe(seconds);
    if (failed) this.pluginError(plugin, failed);
  }

  /** A plugin call failed (`kind`: threw, invalid, timeout). */
  pluginError(plugin: string, kind: string): void {
    this.pluginErrors.inc({ plugin, kind });
    this.errorsByPlugin.set(plugin, (this.errorsByPlugin.get(plugin) ?? 0) + 1);
  }

  /** Each reply class's and deciding plugin's series (one per message: no label key built each time). */
  readonly #messages = new Map<number, Map<string, { inc(): void }>>();

  /** A message was answered after its data with `code`, decided by `plugin` ("" for the core). */
  message(code: number, plugin: string, now: number): void {
    const cls = Math.floor(code / 100);
    let byPlugin = this.#messages.get(cls);
    if (!byPlugin) this.#messages.set(cls, byPlugin = new Map());
    let c = byPlugin.get(plugin);
    if (!c) byPlugin.set(plugin, c = this.messages.child({ class: `${cls}xx`, plugin: plugin || "core" }));
    c.inc();
    if (code >= 200 && code < 300) this.accepted.add(now);
  }
}

const counted = new WeakMap<object, object>();

/** The resolver, counting each lookup (by record type) and each failure (by the DnsError code). */
export function countingResolver(r: Resolver, m: ServerMetrics): Resolver {
  let c = counted.get(r) as Resolver | undefined;
  if (!c) counted.set(r, c = new CountingResolver(r, m));
  return c;
}

/**
 * A resolver that counts what it is asked. A class, not a Proxy: plugins ask several times a
 * message, and a Proxy's trap and closure per call cost more.
 */
class CountingResolver implements Resolver {
  readonly #r: Resolver;
  readonly #m: ServerMetrics;
  readonly #lookups = new Map<string, { inc(): void }>();

  constructor(r: Resolver, m: ServerMetrics) {
    this.#r = r;
    this.#m = m;
  }

  #count<T>(type: string, p: Promise<T>): Promise<T> {
    let c = this.#lookups.get(type);
    if (!c) this.#lookups.set(type, c = this.#m.dnsLookups.child({ type }));
    c.inc();
    return p.catch((e: unknown) => {
      this.#m.dnsFailures.inc({ type, error: String((e as { code?: string })?.code ?? "error") });
      throw e;
    });
  }

  resolve(name: string, type: "MX"): Promise<MxRecord[]>;
  resolve(name: string, type: Exclude<RecordType, "MX">): Promise<string[]>;
  resolve(name: string, type: RecordType): Promise<string[] | MxRecord[]> {
    return this.#count(type, this.#r.resolve(name, type as "A"));
  }
  resolve_a(name: string): Promise<string[]> {
    return this.#count("A", this.#r.resolve_a(name));
  }
  resolve_aaaa(name: string): Promise<string[]> {
    return this.#count("AAAA", this.#r.resolve_aaaa(name));
  }
  resolve_mx(name: string): Promise<MxRecord[]> {
    return this.#count("MX", this.#r.resolve_mx(name));
  }
  resolve_txt(name: string): Promise<string[]> {
    return this.#count("TXT", this.#r.resolve_txt(name));
  }
  resolve_ns(name: string): Promise<string[]> {
    return this.#count("NS", this.#r.resolve_ns(name));
  }
  resolve_ptr(ip: string): Promise<string[]> {
    return this.#count("PTR", this.#r.resolve_ptr(ip));
  }
}

/** The store, counting each operation and each failure. */
export function countingStore(s: Store, m: ServerMetrics): Store {
  let c = counted.get(s) as Store | undefined;
  if (!c) counted.set(s, c = new CountingStore(s, m));
  return c;
}

type StoreOp = Exclude<keyof Store, "location">;

/** A store that counts what it is asked: a class, as CountingResolver, for the same reason. */
class CountingStore implements Store {
  readonly #s: Store;
  readonly #m: ServerMetrics;
  readonly #ops = new Map<StoreOp, { inc(): void }>();

  constructor(s: Store, m: ServerMetrics) {
    this.#s = s;
    this.#m = m;
  }

  get location(): string {
    return this.#s.location;
  }

  #count<T>(op: StoreOp, p: Promise<T>): Promise<T> {
    let c = this.#ops.get(op);
    if (!c) this.#ops.set(op, c = this.#m.storeOps.child({ op }));
    c.inc();
    return p.catch((e: unknown) => {
      this.#m.storeErrors.inc({ op });
      throw e;
    });
  }

  get(key: string): Promise<string | undefined> {
    return this.#count("get", this.#s.get(key));
  }
  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    return this.#count("set", this.#s.set(key, value, ttlSeconds));
  }
  compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds?: number): Promise<boolean> {
    return this.#count("compareAndSet", this.#s.compareAndSet(key, expected, value, ttlSeconds));
  }
  delete(key: string): Promise<void> {
    return this.#count("delete", this.#s.delete(key));
  }
  keys(prefix: string): Promise<string[]> {
    return this.#count("keys", this.#s.keys(prefix));
  }
  incr(key: string, by?: number, ttlSeconds?: number): Promise<number> {
    return this.#count("incr", this.#s.incr(key, by, ttlSeconds));
  }
  hit(key: string, windowSeconds: number, options?: { readonly weight?: number; readonly limit?: number }): Promise<number> {
    return this.#count("hit", this.#s.hit(key, windowSeconds, options));
  }
  ping(): Promise<void> {
    return this.#count("ping", this.#s.ping());
  }
}
