/**
 * qpsmtpd's old names: check_* and async/* as aliases of their successors with the arguments
 * mapped, and the names not implemented, each failing with its replacement.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALIASES, earlytalkerArgs, QPSMTPD_094_BUNDLE, UNSUPPORTED } from "../../src/plugin/aliases.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { BUILTINS } from "../../plugins/mod.ts";

/** Plugins other people are writing now; until they land these names resolve to nothing yet. */
const IN_PROGRESS = new Set([
  "auth/auth_ldap_bind",
  "auth/auth_vpopmaild",
  "milter",
  "queue/exim-bsmtp",
  "queue/postfix-queue",
  "queue/qmail-queue",
  "sender_permitted_from",
  "spamassassin",
  "virus/clamav",
  "virus/clamdscan",
  "dkim",
  "dmarc",
  "domainkeys",
]);

describe("check_earlytalker's action argument", () => {
  test("maps to earlytalker's reject and reject_type; explicit ones win; the rest passes", () => {
    expect(earlytalkerArgs(["action", "log"])).toEqual(["reject", "0"]);
    expect(earlytalkerArgs(["wait", "3", "action", "deny"])).toEqual(["wait", "3", "reject", "1", "reject_type", "perm"]);
    expect(earlytalkerArgs(["action", "denysoft", "defer-reject", "1"])).toEqual([
      "defer-reject",
      "1",
      "reject",
      "1",
      "reject_type",
      "temp",
    ]);
    expect(earlytalkerArgs(["action", "deny", "reject_type", "temp"])).toEqual(["reject_type", "temp", "reject", "1"]);
    expect(earlytalkerArgs(["action", "log", "reject", "1"])).toEqual(["reject", "1"]);
    expect(earlytalkerArgs([])).toEqual([]); // 0.94's earlytalker defaults
    expect(earlytalkerArgs([], "denysoft")).toEqual(["reject", "1", "reject_type", "temp"]); // async/earlytalker's default
  });

  test("check_earlytalker action log lets an early talker in, as qpsmtpd's `action log` did", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["check_earlytalker action log wait 1"], waitForGreeting: false });
    const r = await t.send("EHLO eager\r\n");
    expect(r.some((x) => x.code === 550)).toBe(false);
    const strict = await TestSession.start({ clock, plugins: ["check_earlytalker action deny wait 1"], waitForGreeting: false });
    expect((await strict.send("EHLO eager\r\n"))[0]!.code).toBe(550);
  });
});

describe("aliases load their successor", () => {
  test("the instance keeps the old name; its hooks are the successor's", async () => {
    const t = await TestSession.start({
      plugins: ["check_badrcptto", "rcpt_ok"],
      config: { badrcptto: "closed@example.org", rcpthosts: "example.org" },
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    const r = await t.command("RCPT TO:<closed@example.org>");
    expect(r.code).toBe(550);
    expect(t.logs.some((l) => l.plugin === "check_badrcptto" && l.message.startsWith("fail, closed@example.org"))).toBe(true);
  });

  test("check_basicheaders DAYS requires From and Date, within DAYS", async () => {
    const t = await TestSession.start({ plugins: ["check_basicheaders 5"] });
    t.mockHook("rcpt", () => 900);
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    const r = await t.data("From: a@example.net\nSubject: no date\n\nbody\n");
    expect([r.code, r.text]).toEqual([552, "We require a valid Date header"]); // data_post DENY is 552
  });

  test("relay_only refuses every recipient of a client that may not relay", async () => {
    const t = await TestSession.start({ plugins: ["relay_only", "rcpt_ok"], config: { rcpthosts: "example.org" }, remoteIp: "192.0.2.8" });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).text).toBe("Relaying denied (#5.7.1)");
  });

  test("async/dnsbl's `disconnect` is dnsbl's reject_type disconnect", () => {
    expect(ALIASES["async/dnsbl"]!.args!(["disconnect"])).toEqual(["reject_type", "disconnect"]);
    expect(ALIASES["relay_only"]!.args!([])).toEqual(["only", "1"]);
  });

  test("a file in plugin_dirs wins over an alias of the same name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpalias-"));
    writeFileSync(join(dir, "check_relay.ts"), 'import { DENY } from "qpsmtpd";\nexport const hook_rcpt = () => [DENY, "mine"];\n');
    const cfg = mkdtempSync(join(tmpdir(), "qpaliascfg-"));
    writeFileSync(join(cfg, "plugin_dirs"), `${dir}\n`);
    const t = await TestSession.start({ plugins: ["check_relay"], configDirs: [cfg] });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).text).toBe("mine");
  });
});

describe("names that are not implemented", () => {
  test("each fails with what it was and what to use", async () => {
    const expected: Record<string, string> = {
      "virus/uvscan": "use virus/clamdscan",
      "virus/aveclient": "use virus/clamdscan",
      "virus/bitdefender": "use virus/clamdscan",
      "virus/hbedv": "use virus/clamdscan",
      "virus/kavscanner": "use virus/clamdscan",
      "virus/sophie": "use virus/clamdscan",
      dspam: "use rspamd or spamassassin",
      "auth/auth_cvm_unix_local": "use auth/auth_dovecot (Dovecot's auth service) or auth/auth_checkpassword",
      stunnel: "mark the listener in smtpd.yaml instead: proxy_ports",
      karma_tool: "run `qpsmtpd karma`",
      tls_cert: "run `qpsmtpd tls-cert`",
    };
    for (const [name, use] of Object.entries(expected)) {
      expect(TestSession.start({ plugins: [`${name} some args`] })).rejects.toThrow(
        `(override plugins):1: plugin ${name} is not available in qpsmtpd.ts (`,
      );
      expect(TestSession.start({ plugins: [name] })).rejects.toThrow(use);
    }
  });

  test("a Perl plugin in plugin_dirs is named as such", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpperl-"));
    writeFileSync(join(dir, "my_policy"), "sub hook_rcpt { return DECLINED }\n");
    const cfg = mkdtempSync(join(tmpdir(), "qpperlcfg-"));
    writeFileSync(join(cfg, "plugin_dirs"), `${dir}\n`);
    expect(TestSession.start({ plugins: ["my_policy"], configDirs: [cfg] })).rejects.toThrow(
      `plugin my_policy not found: ${dir}/my_policy is a Perl plugin, and only TypeScript plugins load; port it to ${dir}/my_policy.ts`,
    );
  });
});

describe("qpsmtpd 0.94's bundle", () => {
  test("every name is a built-in, an alias of one, or unsupported with a replacement", () => {
    const unresolved = QPSMTPD_094_BUNDLE.filter((n) => {
      if (BUILTINS[n] || UNSUPPORTED[n] || IN_PROGRESS.has(n)) return false;
      const a = ALIASES[n];
      return !(a && (BUILTINS[a.target] || IN_PROGRESS.has(a.target)));
    });
    expect(unresolved).toEqual([]);
    expect(QPSMTPD_094_BUNDLE).toHaveLength(85); // the 86 files of plugins/, less registry.txt
  });

  test("no alias hides a built-in, and every alias target is a built-in (or being written)", () => {
    for (const [name, a] of Object.entries(ALIASES)) {
      expect(BUILTINS[name]).toBeUndefined();
      expect(BUILTINS[a.target] !== undefined || IN_PROGRESS.has(a.target)).toBe(true);
    }
    for (const name of Object.keys(UNSUPPORTED)) expect(BUILTINS[name]).toBeUndefined();
  });
});
