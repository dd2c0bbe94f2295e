/**
 * What a test session is built from: the plugins and config it loads, and the fakes (clock,
 * DNS) it runs on. Shared by `TestSession` and the project's own server tests.
 * @module
 */
import type { AnyPluginModule } from "../api/hooks.ts";
import type { Zones } from "./zone_resolver.ts";

/** A clock a test moves (`FakeClock`): epoch ms, and one-shot timers. */
export interface TestClock {
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

export interface SetupOptions {
  /** `config/plugins` lines, e.g. `["relay", "rcpt_ok", "queue/maildir /tmp/m"]`. */
  readonly plugins?: readonly string[];
  /** Config values by name (each value a line); these win over files. */
  readonly config?: Readonly<Record<string, string | readonly string[]>>;
  /** Config directories searched for everything else (default: none). */
  readonly configDirs?: readonly string[];
  /** Plugin modules by name (`{ my_plugin: await import("./my_plugin.ts") }`), found before the built-ins. */
  readonly modules?: Readonly<Record<string, AnyPluginModule>>;
  /** DNS answers by name (see `ZoneResolver`); without it, lookups go to `dns_servers`. */
  readonly dns?: Zones;
  /** A clock the test moves (`FakeClock`); timeouts then fire only when it is advanced. */
  readonly clock?: TestClock;
  /** Log level printed to stderr when no logging plugin is loaded (default: nothing). */
  readonly logLevel?: number;
}
