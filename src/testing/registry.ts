/**
 * A plugin generation built from test options: config values instead of files, the built-in
 * plugins plus any modules a test gives, and fakes for the clock and DNS when asked for.
 * The harness and the project's own server tests start from here.
 * @module
 */
import { ConfigDir } from "../config/files.ts";
import { Logger } from "../core/logger.ts";
import { connectLogging } from "../core/logging.ts";
import type { Registry } from "../core/registry.ts";
import { ServerHost } from "../core/server_host.ts";
import { configuredResolver } from "../dns/resolver.ts";
import { loadRegistry } from "../plugin/loader.ts";
import { createTlsContext } from "../runtime/sockets.ts";
import { openStore } from "../store/choose.ts";
import { BUILTINS } from "../../plugins/mod.ts";
import type { AnyPluginModule } from "../api/hooks.ts";
import type { SetupOptions } from "./options.ts";
import { ZoneResolver } from "./zone_resolver.ts";

/** A host on `config` with the real services, or the fakes `opts` asks for. */
export function testHost(config: ConfigDir, opts: Pick<SetupOptions, "dns" | "clock" | "logLevel"> = {}): ServerHost {
  const zones = opts.dns ? new ZoneResolver(opts.dns) : undefined;
  return new ServerHost(config, new Logger(opts.logLevel ?? -1), {
    dns: zones ? () => zones : configuredResolver(),
    store: openStore,
    tls: createTlsContext,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
}

/** Loads a registry as the server would, from `opts` instead of a config directory. */
export async function testRegistry(opts: SetupOptions): Promise<Registry> {
  const config = new ConfigDir({ dirs: opts.configDirs ?? [] });
  // As lines read from a file are: trimmed.
  config.overrides.set("plugins", (opts.plugins ?? []).map((l) => l.trim()));
  if (!opts.config?.["logging"]) config.overrides.set("logging", []);
  for (const [k, v] of Object.entries(opts.config ?? {})) config.overrides.set(k, typeof v === "string" ? [v] : v);
  const host = testHost(config, opts);
  const registry = await loadRegistry({ host, builtins: { ...BUILTINS, ...asLoaders(opts.modules ?? {}) }, defaultPluginDirs: [] });
  connectLogging(registry);
  return registry;
}

/** Modules a test hands in, in the shape of the built-ins' loaders. */
function asLoaders(modules: Readonly<Record<string, AnyPluginModule>>): Record<string, () => Promise<AnyPluginModule>> {
  return Object.fromEntries(Object.entries(modules).map(([name, m]) => [name, () => Promise.resolve(m)]));
}
