/** `qpsmtpd check`'s migration report (src/plugin/check.ts), on config directories in temp dirs. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigDir } from "../../src/config/files.ts";
import { checkConfig } from "../../src/plugin/check.ts";
import { testHost } from "../../src/testing/registry.ts";
import { BUILTINS } from "../../plugins/mod.ts";
import { debianCopy } from "../helpers/debian.ts";

function check(dir: string, tlsPorts = 0) {
  return checkConfig({ host: testHost(new ConfigDir({ dirs: [dir] })), builtins: BUILTINS, defaultPluginDirs: [], tlsPorts });
}

function dirWith(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "qpcheck-"));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(d, k), v);
  return d;
}

describe("qpsmtpd check on Debian's qpsmtpd 0.94 directory", () => {
  test("moved: every line resolves, nothing stops the daemon, and the Perl plugins are explained", async () => {
    const { dir, perlPlugins } = debianCopy();
    const r = await check(dir);
    expect(r.problems).toEqual([]);
    expect(r.plugins).toBe(10);
    expect(r.lines).toContain(`${dir}/plugins:28: check_earlytalker action log -> alias of earlytalker reject 0`);
    expect(r.lines).toContain(`${dir}/plugins:33: check_relay -> alias of relay`);
    expect(r.lines).toContain(`${dir}/plugins:46: rhsbl -> built-in`);
    expect(r.lines.some((l) => l.startsWith(`${dir}/plugins:66: check_spamhelo -> alias of helo;`))).toBe(true);
    expect(r.lines.some((l) => l.startsWith(`${dir}/logging:10: logging/file loglevel LOGINFO `))).toBe(true);
    expect(r.warnings).toContain("no queue plugin: every message will get 451 (add queue/maildir or queue/smtp-forward)");
    expect(r.warnings.some((w) => w.startsWith(`plugin_dirs: ${perlPlugins} holds 6 Perl plugin file(s), which are not loaded`))).toBe(
      true,
    );
    expect(r.warnings.filter((w) => w.includes("no plugin or core setting reads"))).toEqual([]);
  });

  test("copied but not edited: the $includes of /etc/qpsmtpd are reported with the fix", async () => {
    const { dir } = debianCopy(false);
    const r = await check(dir);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toContain(
      `${dir}/plugins:208: $include /etc/qpsmtpd/debian-queue-method: no such file, so it adds nothing; ` +
        `this directory has debian-queue-method: write "$include debian-queue-method"`,
    );
    expect(r.warnings.some((w) => w.startsWith(`${dir}/rcpthosts:17: $include /etc/qpsmtpd/debian-rcpthosts: no such file`))).toBe(true);
    expect(r.warnings).toContain("plugin_dirs: /usr/share/qpsmtpd/plugins does not exist");
    expect(r.warnings.some((w) => w.includes("debian-queue-method: no plugin"))).toBe(false);
  });
});

describe("qpsmtpd check's findings", () => {
  test("every broken line is reported, not only the first; the good ones still load", async () => {
    const d = dirWith({ plugins: "rcpt_okk\nrelay\nvirus/uvscan\nqueue/maildir\ncheck_loop 50\n", rcpthosts: "example.org\n" });
    const r = await check(d);
    expect(r.problems).toEqual([
      `${d}/plugins:1: plugin rcpt_okk not found`,
      `${d}/plugins:3: plugin virus/uvscan is not available in qpsmtpd.ts (McAfee's uvscan (discontinued)): use virus/clamdscan (ClamAV's clamd)`,
      `${d}/plugins:4: plugin queue/maildir failed to load: queue/maildir needs the Maildir directory as its first argument`,
    ]);
    expect(r.plugins).toBe(2);
    expect(r.lines).toEqual([
      `${d}/plugins:1: rcpt_okk -> plugin rcpt_okk not found`,
      `${d}/plugins:2: relay -> built-in`,
      `${d}/plugins:3: virus/uvscan -> plugin virus/uvscan is not available in qpsmtpd.ts (McAfee's uvscan (discontinued)): use virus/clamdscan (ClamAV's clamd)`,
      `${d}/plugins:4: queue/maildir -> plugin queue/maildir failed to load: queue/maildir needs the Maildir directory as its first argument`,
      `${d}/plugins:5: check_loop 50 -> alias of loop 50`,
    ]);
  });

  test("unknown files, with the name they were probably meant to be; qpsmtpd-only files with advice", async () => {
    const d = dirWith({
      plugins: "rcpt_ok\nrcpt_map domain example.org file rcpt_map.txt\n",
      rcpthosts: "example.org\n",
      rcpthost: "example.net\n",
      "rcpt_map.txt": "a@example.org OK\n",
      "morercpthosts.cdb": "",
      spool_perms: "0700\n",
      "plugins~": "",
      notes_to_self: "",
    });
    const r = await check(d);
    expect(r.warnings).toContain(`${d}/rcpthost: no plugin or core setting reads rcpthost (did you mean rcpthosts?)`);
    expect(r.warnings).toContain(`${d}/notes_to_self: no plugin or core setting reads notes_to_self`);
    expect(r.warnings).toContain(
      `${d}/morercpthosts.cdb: morercpthosts.cdb is not read (no CDB maps here): put its domains in morercpthosts, one a line`,
    );
    expect(r.warnings).toContain(`${d}/spool_perms: spool_perms is not read: the spool directory is always mode 0700`);
    expect(r.warnings.some((w) => w.includes("rcpt_map.txt") || w.includes("plugins~"))).toBe(false);
  });

  test("files a plugin expects that are missing; old pattern files with where their lines go", async () => {
    const d = dirWith({ plugins: "rcpt_ok\ncheck_badrcptto_patterns\nauth/auth_flat_file\n", badrcptto_patterns: "^bad.* go away\n" });
    const r = await check(d);
    expect(r.warnings).toContain(`${d}/plugins:1: rcpt_ok reads the config file rcpthosts, which is missing (so it checks nothing)`);
    expect(r.warnings).toContain(
      `${d}/plugins:2: check_badrcptto_patterns reads the config file badrcptto, which is missing (so it checks nothing)`,
    );
    expect(r.warnings).toContain(
      `${d}/plugins:3: auth/auth_flat_file reads the config file flat_auth_pw, which is missing (so it checks nothing)`,
    );
    expect(r.warnings).toContain("badrcptto_patterns is not read: move its lines into badrcptto (it takes regular expressions)");
    expect(r.problems).toEqual([]);
  });

  test("bad values and implicit TLS without a TLS plugin are problems", async () => {
    const d = dirWith({ plugins: "rcpt_ok\n", rcpthosts: "example.org\n", databytes: "lots\n" });
    const r = await check(d, 1);
    expect(r.problems).toEqual([
      `${d}/databytes:1: databytes must be a whole number, not "lots"; using 0`,
      "implicit-TLS ports are set but no plugin offers TLS (load the tls plugin)",
    ]);
  });
});
