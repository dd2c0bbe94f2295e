/** A real qpsmtpd server in this process, on an ephemeral loopback port. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../../src/config/files.ts";
import type { PluginModule } from "../../src/core/hooks.ts";
import { Logger } from "../../src/core/logger.ts";
import { PluginHost } from "../../src/plugin/host.ts";
import { loadRegistry } from "../../src/plugin/loader.ts";
import { SmtpServer } from "../../src/server/server.ts";
import { BUILTINS } from "../../plugins/mod.ts";

export interface RunningServer {
  readonly port: number;
  readonly server: SmtpServer;
  stop(): Promise<void>;
}

export async function startServer(opts: {
  plugins: string[];
  config?: Record<string, string | string[]>;
  modules?: Record<string, PluginModule>;
  tls?: boolean;
}): Promise<RunningServer> {
  const config = new ConfigDir({ dirs: [mkdtempSync(join(tmpdir(), "qpsrv-"))] });
  config.overrides.set("plugins", opts.plugins);
  config.overrides.set("logging", []);
  for (const [k, v] of Object.entries(opts.config ?? {})) config.overrides.set(k, typeof v === "string" ? [v] : v);
  const host = new PluginHost(config, new Logger(-1));
  const registry = await loadRegistry({ host, builtins: { ...BUILTINS, ...opts.modules }, defaultPluginDirs: [] });
  const server = new SmtpServer(registry, { listen: [{ host: "127.0.0.1", port: 0, tls: opts.tls ?? false }], limitConnections: 50, maxFromIp: 50 });
  const [addr] = await server.start();
  server.open();
  return { port: addr!.port, server, stop: () => server.stop(1000) };
}
