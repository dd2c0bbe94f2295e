/**
 * `qpsmtpd check` as a migration report for a qpsmtpd config directory: every `logging` and
 * `plugins` line with what it resolved to (built-in, alias of, disk plugin, unsupported), the
 * config files nothing reads (a typo such as `rcpthost`), the files a plugin expects that are
 * missing, `$include`s of missing files, and the plugins' own `check()` findings. Only what
 * would stop the daemon is a problem; the rest are warnings, since qpsmtpd and our daemon both
 * run such a config.
 * @module
 */
import * as fs from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { AnyPluginModule } from "../api/hooks.ts";
import { ConfigError } from "../config/errors.ts";
import { pluginChecks } from "../core/checks.ts";
import { readLimits } from "../core/limits.ts";
import type { Registry } from "../core/registry.ts";
import type { ServerHost } from "../core/server_host.ts";
import { ALIASES } from "./aliases.ts";
import { EXPECTED_FILES, isKnownConfig, isLeftover, nearestKnown, QPSMTPD_ONLY_CONFIG } from "./config_names.ts";
import { type LineReport, loadRegistry, pluginDirs, type Resolution } from "./loader.ts";

export interface CheckOptions {
  readonly host: ServerHost;
  readonly builtins: Readonly<Record<string, () => Promise<AnyPluginModule>>>;
  readonly defaultPluginDirs: readonly string[];
  /** How many implicit-TLS ports the daemon would open (they need a TLS plugin). */
  readonly tlsPorts: number;
}

export interface CheckReport {
  /** One line per `logging`/`plugins` line: `file:line: text -> what it resolved to`. */
  readonly lines: string[];
  /** What would stop the daemon (or make it use a default instead of a bad value). */
  readonly problems: string[];
  /** What deserves a look but does not stop the daemon. */
  readonly warnings: string[];
  /** Plugins that loaded. */
  readonly plugins: number;
}

/** Loads everything as the daemon would, without stopping at the first problem. */
export async function checkConfig(opts: CheckOptions): Promise<CheckReport> {
  const { host } = opts;
  const config = host.configDir;
  const problems: string[] = [];
  const warnings: string[] = [];
  const lines: string[] = [];
  const loaded: LineReport[] = [];
  readLimits(config, (m) => problems.push(m));
  try {
    config.bool("tls_before_auth");
  } catch (e) {
    problems.push((e as Error).message);
  }
  let registry: Registry | undefined;
  try {
    registry = await loadRegistry({
      host,
      builtins: opts.builtins,
      defaultPluginDirs: opts.defaultPluginDirs,
      keepGoing: true,
      report: (r) => {
        lines.push(`${r.line.file}:${r.line.line}: ${r.line.value} -> ${r.error ? withoutWhere(r.error) : describe(r.resolution)}`);
        if (r.error) problems.push(r.error);
        else loaded.push(r);
      },
    });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(e.message); // plugin_timeout: nothing could load
  }
  if (registry) {
    if (opts.tlsPorts > 0 && registry.tlsContext === undefined) {
      problems.push("implicit-TLS ports are set but no plugin offers TLS (load the tls plugin)");
    }
    // qpsmtpd runs these too; they are worth a warning, not a refusal.
    if (!registry.has("rcpt")) warnings.push("no rcpt plugin: every recipient will get 450 (add rcpt_ok)");
    if (!registry.has("queue")) warnings.push("no queue plugin: every message will get 451 (add queue/maildir or queue/smtp-forward)");
  }
  warnings.push(...expectedFiles(host, loaded));
  warnings.push(...includes(host));
  warnings.push(...pluginDirWarnings(host, opts.defaultPluginDirs));
  warnings.push(...unknownFiles(host));
  const spool = config.get("spool_dir");
  if (spool !== undefined && !fs.existsSync(spool)) {
    warnings.push(`spool_dir ${spool} does not exist yet; it is made (mode 0700) when first needed`);
  }
  if (registry) warnings.push(...await pluginChecks(registry));
  return { lines, problems, warnings, plugins: registry?.plugins.length ?? 0 };
}

function withoutWhere(message: string): string {
  return message.replace(/^\S+:\d+: /, "");
}

/** What a name resolved to, in words. */
export function describe(r: Resolution | undefined): string {
  if (!r) return "?";
  if (r.kind === "builtin") return "built-in";
  if (r.kind === "disk") return `disk plugin ${r.path}`;
  const args = r.args.length ? ` ${r.args.join(" ")}` : "";
  const where = r.target.kind === "disk" ? `, ${describe(r.target)}` : "";
  return `alias of ${r.of}${args}${where}${r.note ? `; ${r.note}` : ""}`;
}

/** The plugin a loaded line really is: the alias's target, else its own file. */
function effectiveName(r: LineReport): string {
  return r.resolution?.kind === "alias" ? r.resolution.of : r.name.replace(/:\d+$/, "");
}

function expectedFiles(host: ServerHost, loaded: readonly LineReport[]): string[] {
  const out: string[] = [];
  const said = new Set<string>();
  for (const r of loaded) {
    const name = effectiveName(r);
    for (const f of EXPECTED_FILES[name] ?? []) {
      if (said.has(f) || host.configDir.path(f) !== undefined) continue;
      said.add(f);
      out.push(`${r.line.file}:${r.line.line}: ${r.name} reads the config file ${f}, which is missing (so it checks nothing)`);
    }
    const alias = ALIASES[r.name.replace(/:\d+$/, "")];
    for (const [f, advice] of Object.entries(alias?.oldFiles ?? {})) {
      if (!said.has(f) && host.configDir.path(f) !== undefined) (said.add(f), out.push(`${f} ${advice}`));
    }
  }
  return out;
}

/** The files of the first config directory, as `[name, path]`, with the `$include` lines of each. */
function configFiles(dir: string): Array<{ name: string; path: string; text: string }> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    try {
      if (!fs.statSync(path).isFile()) continue;
      out.push({ name, path, text: fs.readFileSync(path, "utf8") });
    } catch { /* unreadable: the daemon reports it when it reads it */ }
  }
  return out;
}

const INCLUDE = /^\s*\$include\s+(\S+)\s*$/;

/** `$include`s in the config directory whose target is missing: their lines are silently skipped. */
function includes(host: ServerHost): string[] {
  const out: string[] = [];
  const dir = host.configDir.dirs[0] ?? "";
  for (const f of configFiles(dir)) {
    f.text.split("\n").forEach((l, i) => {
      const m = INCLUDE.exec(l);
      if (!m || host.configDir.path(m[1]!) !== undefined) return;
      // A moved directory: the absolute path still names the old place.
      const here = isAbsolute(m[1]!) && isFile(join(dir, basename(m[1]!)))
        ? `; this directory has ${basename(m[1]!)}: write "$include ${basename(m[1]!)}"`
        : "";
      out.push(`${f.path}:${i + 1}: $include ${m[1]}: no such file, so it adds nothing${here}`);
    });
  }
  return out;
}

function pluginDirWarnings(host: ServerHost, fallback: readonly string[]): string[] {
  const out: string[] = [];
  if (host.configDir.lines("plugin_dirs").length === 0) return out;
  for (const d of pluginDirs(host.configDir, fallback)) {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      out.push(`plugin_dirs: ${d} does not exist`);
      continue;
    }
    const perl = names.filter((n) => !n.includes(".") && isFile(join(d, n)));
    if (perl.length) {
      out.push(
        `plugin_dirs: ${d} holds ${perl.length} Perl plugin file(s), which are not loaded: ` +
          "qpsmtpd's own names resolve to the built-ins; port your own to TypeScript (docs/plugins.md)",
      );
    }
  }
  return out;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Files in the config directory that nothing reads. */
function unknownFiles(host: ServerHost): string[] {
  const dir = host.configDir.dirs[0];
  if (dir === undefined) return [];
  const files = configFiles(dir);
  const referenced = new Set<string>();
  for (const f of files) {
    for (const l of f.text.split("\n")) {
      const m = INCLUDE.exec(l);
      if (m) referenced.add(resolve(dir, m[1]!)).add(join(dir, basename(m[1]!)));
    }
  }
  // A file named on a plugin's line (a certificate, a map) is that plugin's.
  for (const l of [...host.configDir.lines("plugins"), ...host.configDir.lines("logging")]) {
    for (const word of l.value.split(/\s+/).slice(1)) referenced.add(isAbsolute(word) ? word : resolve(dirname(l.file), word));
  }
  const out: string[] = [];
  for (const f of files) {
    if (isKnownConfig(f.name) || isLeftover(f.name) || referenced.has(f.path)) continue;
    const advice = QPSMTPD_ONLY_CONFIG[f.name];
    if (advice) {
      out.push(`${f.path}: ${f.name} ${advice}`);
      continue;
    }
    const near = nearestKnown(f.name);
    out.push(`${f.path}: no plugin or core setting reads ${basename(f.path)}${near ? ` (did you mean ${near}?)` : ""}`);
  }
  return out;
}
