/** A real qpsmtpd server in this process, on an ephemeral loopback port. */
import type { AnyPluginModule } from "qpsmtpd";
import { SmtpServer } from "../../src/server/server.ts";
import { testRegistry } from "../../src/testing/registry.ts";

export interface RunningServer {
  readonly port: number;
  readonly server: SmtpServer;
  stop(): Promise<void>;
}

export async function startServer(opts: {
  plugins: string[];
  config?: Record<string, string | string[]>;
  modules?: Record<string, AnyPluginModule>;
  tls?: boolean;
}): Promise<RunningServer> {
  const registry = await testRegistry(opts);
  const server = new SmtpServer(registry, {
    listen: [{ host: "127.0.0.1", port: 0, tls: opts.tls ?? false }],
    limitConnections: 50,
    maxFromIp: 50,
  });
  const [addr] = await server.start();
  server.open();
  return { port: addr!.port, server, stop: () => server.stop(1000) };
}
