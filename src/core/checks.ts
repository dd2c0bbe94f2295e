/**
 * The plugins' own checks for `qpsmtpd check`: each plugin's `check()` export, with the plugin's
 * time limit; what it returns, throws or fails to answer in time becomes a warning.
 * @module
 */
import type { AnyPluginModule } from "../api/hooks.ts";
import { callControl, ServerCall } from "./hook_context.ts";
import type { Registry } from "./registry.ts";

/** Runs every loaded plugin's `check()`; returns the warnings, each starting with the plugin's name. */
export async function pluginChecks(registry: Registry): Promise<string[]> {
  const out: string[] = [];
  for (const p of registry.plugins) {
    const check = (p.module as AnyPluginModule).check;
    if (typeof check !== "function") continue;
    const ctx = new ServerCall(p, undefined);
    let timer: { cancel(): void } | undefined;
    try {
      const late = new Promise<never>((_, reject) => {
        if (p.timeoutMs > 0) {
          timer = p.host.clock.after(p.timeoutMs, () => {
            const why = `check did not finish within ${p.timeoutMs / 1000}s`;
            callControl.abort(ctx, why);
            reject(new Error(why));
          });
        }
      });
      const warnings = await Promise.race([Promise.resolve(check.call(ctx as never, p.server)), late]);
      for (const w of warnings) out.push(`${p.name}: ${w}`);
    } catch (e) {
      out.push(`${p.name}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      timer?.cancel();
    }
  }
  return out;
}
