/**
 * The loaded plugins of one generation (start-up or a SIGHUP reload) and the hook table built
 * from them. Sessions keep the registry they started with, so a reload never changes a chain
 * under a running connection.
 * @module
 */
import { HOOK_NAMES, type HookFn, type HookName } from "../core/hooks.ts";
import type { Plugin } from "./plugin.ts";
import type { PluginHost } from "./host.ts";

export interface HookEntry {
  readonly plugin: Plugin;
  readonly hook: HookName;
  readonly fn: HookFn<HookName>;
}

export class Registry {
  readonly host: PluginHost;
  readonly plugins: Plugin[] = [];
  readonly #hooks = new Map<HookName, HookEntry[]>();

  constructor(host: PluginHost) {
    this.host = host;
  }

  /** Adds a plugin's registrations to the hook table, in registration order. */
  add(plugin: Plugin): void {
    this.plugins.push(plugin);
    for (const r of plugin._registrations) {
      let chain = this.#hooks.get(r.hook);
      if (!chain) this.#hooks.set(r.hook, (chain = []));
      const entry = { plugin, hook: r.hook, fn: r.fn };
      if (r.unshift) chain.unshift(entry);
      else chain.push(entry);
    }
  }

  /** Puts `fn` first in `hook`'s chain, as plugin `plugin` (test harness: mockHook). */
  prepend(hook: HookName, plugin: Plugin, fn: HookFn<HookName>): void {
    const chain = this.#hooks.get(hook) ?? [];
    this.#hooks.set(hook, [{ plugin, hook, fn }, ...chain]);
  }

  /** Removes every entry of `plugin` from `hook`'s chain. */
  remove(hook: HookName, plugin: Plugin): void {
    this.#hooks.set(hook, (this.#hooks.get(hook) ?? []).filter((e) => e.plugin !== plugin));
  }

  chain(hook: HookName): readonly HookEntry[] {
    return this.#hooks.get(hook) ?? [];
  }

  has(hook: HookName): boolean {
    return (this.#hooks.get(hook)?.length ?? 0) > 0;
  }

  /** The first plugin loaded from the file `name` (`tls`, `queue/maildir`). */
  find(name: string): Plugin | undefined {
    return this.plugins.find((p) => p.file === name);
  }

  /** Every hook with its chain, for `qpsmtpd hooks`. */
  table(): Array<[HookName, readonly HookEntry[]]> {
    return HOOK_NAMES.filter((h) => this.has(h)).map((h) => [h, this.chain(h)]);
  }
}
