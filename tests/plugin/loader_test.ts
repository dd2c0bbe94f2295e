import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../../src/config/files.ts";
import { loadRegistry } from "../../src/plugin/loader.ts";
import { testHost } from "../../src/testing/registry.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { BUILTINS } from "../../plugins/mod.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/plugins");
const EXAMPLES = join(import.meta.dir, "../../examples/plugins");

function load(plugins: string, extra: Record<string, string> = {}) {
  const d = mkdtempSync(join(tmpdir(), "qpload-"));
  writeFileSync(join(d, "plugins"), plugins);
  writeFileSync(join(d, "plugin_dirs"), `${FIXTURES}\n${EXAMPLES}\n`);
  for (const [k, v] of Object.entries(extra)) writeFileSync(join(d, k), v);
  const host = testHost(new ConfigDir({ dirs: [d] }));
  return { dir: d, load: () => loadRegistry({ host, builtins: BUILTINS, defaultPluginDirs: [] }) };
}

describe("plugin loading", () => {
  test('disk plugins import "qpsmtpd" and their own relative files; order is hook order', async () => {
    const r = await load("# comment\n\ndeny_bob\nrcpt_ok\n").load();
    expect(r.chain("rcpt").map((e) => e.plugin.name)).toEqual(["deny_bob", "rcpt_ok"]);
  });

  test("unknown plugins, bad lines and unknown hooks stop the load, naming file and line", async () => {
    const a = load("relay\nno_such_plugin\n");
    expect(a.load()).rejects.toThrow(`${join(a.dir, "plugins")}:2: plugin no_such_plugin not found`);
    const b = load("relay\n\nbad_hook\n");
    expect(b.load()).rejects.toThrow(
      `${join(b.dir, "plugins")}:3: plugin bad_hook (${FIXTURES}/bad_hook.ts) exports hook_rcpt_too, which is not a qpsmtpd hook`,
    );
    const c = load("../etc/passwd\n");
    expect(c.load()).rejects.toThrow(":1: bad plugin name");
    const d = load("My::Perl::Plugin\n");
    expect(d.load()).rejects.toThrow("Perl module plugin");
    const e = load("queue/maildir\n");
    expect(e.load()).rejects.toThrow(":1: plugin queue/maildir failed to load: queue/maildir needs the Maildir directory");
  });

  test("name:N loads separate instances with their own arguments", async () => {
    const t = await TestSession.start({ plugins: ["counter:0 first", "counter:1 second"], configDirs: [load("").dir] });
    expect((await t.command("VRFY x")).text).toBe("instance counter_3a0 label first");
    const second = await TestSession.start({ plugins: ["counter:1 second"], configDirs: [load("").dir] });
    expect((await second.command("VRFY x")).text).toBe("instance counter_3a1 label second");
  });

  test("a disk plugin shadows a built-in of the same name", async () => {
    const d = mkdtempSync(join(tmpdir(), "qpshadow-"));
    writeFileSync(join(d, "rcpt_ok.ts"), 'import { DENY } from "qpsmtpd";\nexport const hook_rcpt = () => [DENY, "shadowed"];\n');
    const cfg = load("rcpt_ok\n");
    writeFileSync(join(cfg.dir, "plugin_dirs"), `${d}\n`);
    const t = await TestSession.start({ plugins: ["rcpt_ok"], configDirs: [cfg.dir] });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<postmaster>")).text).toBe("shadowed");
  });

  test("extension-less files in plugin dirs (Perl plugins) are never candidates", async () => {
    const d = mkdtempSync(join(tmpdir(), "qpperl-"));
    writeFileSync(join(d, "rcpt_ok"), "sub hook_rcpt { return (DENY) }\n");
    const cfg = load("rcpt_ok\n");
    writeFileSync(join(cfg.dir, "plugin_dirs"), `${d}\n`);
    const r = await cfg.load();
    expect(r.plugins.find((p) => p.file === "rcpt_ok")?.module).toBe(await BUILTINS["rcpt_ok"]!());
  });

  test("every plugin file under plugins/ is in the built-in list", async () => {
    const glob = new Bun.Glob("**/*.ts");
    const root = join(import.meta.dir, "../../plugins");
    const names = [...glob.scanSync(root)].filter((f) => f !== "mod.ts").map((f) => f.replace(/\.ts$/, "")).sort();
    expect(Object.keys(BUILTINS).sort()).toEqual(names);
  });
});
