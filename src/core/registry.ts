/**
 * The loaded plugins of one generation (start-up or a SIGHUP reload) and the hook table built
 * from them. Sessions keep the registry they started with, so a reload never changes a chain
 * under a running connection.
 * @module
 */
import { type HookFn } from "../api/hooks.ts";
import { HOOK_NAMES, type HookName } from "../api/hook_names.ts";
import type { Server } from "../api/server.ts";
import type { PluginInstance } from "./plugin_instance.ts";
import { PluginServer, type TlsHolder } from "./plugin_server.ts";
import type { ServerHost } from "./server_host.ts";

export interface HookEntry {
  readonly plugin: PluginInstance;
  readonly hook: HookName;
  readonly fn: HookFn<HookName>;
}

export class Registry implements TlsHolder {
  readonly host: ServerHost;
  /** What this generation's plugins see as `server`. */
  readonly server: Server;
  readonly plugins: PluginInstance[] = [];
  /** The TLS context a plugin of this generation offered (`server.set_tls`). */
  tlsContext: unknown;
  readonly #hooks = new Map<HookName, HookEntry[]>();

  constructor(host: ServerHost) {
    this.host = host;
    this.server = new PluginServer(host, this);
  }

  /** Adds a plugin's registrations to the hook table, in registration order. */
  add(plugin: PluginInstance): void {
    this.plugins.push(plugin);
    for (const r of plugin.registrations) {
      let chain = this.#hooks.get(r.hook);
      if (!chain) this.#hooks.set(r.hook, chain = []);
      const entry = { plugin, hook: r.hook, fn: r.fn };
      if (r.unshift) chain.unshift(entry);
      else chain.push(entry);
    }
  }

  /** Puts `fn` first in `hook`'s chain, as plugin `plugin` (the test harness's mockHook). */
  prepend(hook: HookName, plugin: PluginInstance, fn: HookFn<HookName>): void {
    this.#hooks.set(hook, [{ plugin, hook, fn }, ...this.chain(hook)]);
  }

  /** Removes every entry of `plugin` from `hook`'s chain. */
  remove(hook: HookName, plugin: PluginInstance): void {
    this.#hooks.set(hook, this.chain(hook).filter((e) => e.plugin !== plugin));
  }

  chain(hook: HookName): readonly HookEntry[] {
    return this.#hooks.get(hook) ?? [];
  }

  has(hook: HookName): boolean {
    return (this.#hooks.get(hook)?.length ?? 0) > 0;
  }

  /** Every hook with its chain, for `qpsmtpd hooks`. */
  table(): Array<[HookName, readonly HookEntry[]]> {
    return HOOK_NAMES.filter((h) => this.has(h)).map((h) => [h, this.chain(h)]);
  }
}
