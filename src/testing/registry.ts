/**
 * A plugin generation built from test options: config values instead of files, the built-in
 * plugins plus any modules a test gives, and fakes for the clock and DNS when asked for.
 * The harness and the project's own server tests start from here.
 * @module
 */
import type { AnyPluginModule } from "../api/hooks.ts";
import { ConfigDir } from "../config/files.ts";
import type { Clock } from "../core/clock.ts";
import { Logger } from "../core/logger.ts";
import { connectLogging } from "../core/logging.ts";
import type { Registry } from "../core/registry.ts";
import { ServerHost } from "../core/server_host.ts";
import { configuredResolver } from "../dns/resolver.ts";
import { loadRegistry } from "../plugin/loader.ts";
import { createTlsContext } from "../runtime/sockets.ts";
import { storeIn } from "../store/store.ts";
import { BUILTINS } from "../../plugins/mod.ts";
import { ZoneResolver, type Zones } from "./zone_resolver.ts";

export interface RegistryOptions {
  /** `config/plugins` lines, e.g. `["relay", "rcpt_ok", "queue/maildir /tmp/m"]`. */
  readonly plugins?: readonly string[];
  /** Config values by name (each value a line); these win over files. */
  readonly config?: Readonly<Record<string, string | readonly string[]>>;
  /** Config directories searched for everything else (default: none). */
  readonly configDirs?: readonly string[];
  /** Plugin modules by name, found before the built-ins. */
  readonly modules?: Readonly<Record<string, AnyPluginModule>>;
  /** DNS answers by name; without it, lookups go to the servers in `dns_servers`. */
  readonly dns?: Zones;
  /** The clock for timeouts (a `FakeClock` in tests that move time). */
  readonly clock?: Clock;
  /** Log level printed to stderr when no logging plugin is loaded (default: nothing). */
  readonly logLevel?: number;
}

/** A host on `config` with the real services, or the fakes `opts` asks for. */
export function testHost(config: ConfigDir, opts: Pick<RegistryOptions, "dns" | "clock" | "logLevel"> = {}): ServerHost {
  const zones = opts.dns ? new ZoneResolver(opts.dns) : undefined;
  return new ServerHost(config, new Logger(opts.logLevel ?? -1), {
    dns: zones ? () => zones : configuredResolver(),
    store: storeIn,
    tls: createTlsContext,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
}

/** Loads a registry as the server would, from `opts` instead of a config directory. */
export async function testRegistry(opts: RegistryOptions): Promise<Registry> {
  const config = new ConfigDir({ dirs: opts.configDirs ?? [] });
  config.overrides.set("plugins", opts.plugins ?? []);
  if (!opts.config?.["logging"]) config.overrides.set("logging", []);
  for (const [k, v] of Object.entries(opts.config ?? {})) config.overrides.set(k, typeof v === "string" ? [v] : v);
  const host = testHost(config, opts);
  const registry = await loadRegistry({ host, builtins: { ...BUILTINS, ...opts.modules }, defaultPluginDirs: [] });
  connectLogging(registry);
  return registry;
}
