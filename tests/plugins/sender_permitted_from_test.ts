/**
 * sender_permitted_from: SPF through the plugin, with zones on a loopback DNS server. Cases for
 * every section of the RFC 7208 suite, the whole suite itself (from Debian's python3-spf),
 * qpsmtpd's reject levels, the Received-SPF and Authentication-Results fields, bad input, and
 * pyspf as a second opinion.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { DnsResolver } from "../../src/dns/resolver.ts";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { checkSpf, receivedSpf, type SpfOutcome } from "../../plugins/sender_permitted_from.ts";
import { TestDnsServer, type Zone } from "../helpers/dns_server.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { conforms, loadSuite, SUITE_PATH } from "../helpers/spf_suite.ts";
import { run } from "../e2e/helpers.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

const V4 = "192.0.2.10";
const V6 = "2001:db8::10";
const hosts = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `a:${prefix}${i + 1}.limits.example`).join(" ");

/** Our own zone: a few names per section of the RFC 7208 suite. */
const ZONE: Zone = {
  // Initial processing
  "hosed.init.example": { TXT: ["v=spf1 ip4:192.0.2.10 \u00e9all"] },
  "spaces.init.example": { TXT: ["v=spf1 ip4:192.0.2.99  -all"] },
  "trailing.init.example": { TXT: ["v=spf1 ip4:192.0.2.10 -all "] },
  "ctrl.init.example": { TXT: ["v=spf1 ip4:192.0.2.99\tip4:192.0.2.10 -all"] },
  // Record lookup
  "slowtxt.lookup.example": { A: [V4], drop: ["TXT"] },
  "notxt.lookup.example": { A: [V4] },
  "gone.lookup.example": { drop: true },
  // Selecting records
  "two.select.example": { TXT: ["v=spf1 -all", "v=spf1 +all"] },
  "spf10.select.example": { TXT: ["v=spf10 +all"] },
  "mixed.select.example": { TXT: ["google-site-verification=abc", "v=spf1 -all"] },
  "upper.select.example": { TXT: ["V=SpF1 ~all"] },
  "split.select.example": { TXT: [["v=spf1 ip4:192.0.2.", "10 -all"]] },
  // Record evaluation
  "anywhere.eval.example": { TXT: ["v=spf1 ip4:192.0.2.10 -all moo"] },
  "default.eval.example": { TXT: ["v=spf1 ip4:192.0.2.99"] },
  "redirafter.eval.example": { TXT: ["v=spf1 redirect=target.eval.example ~all"] },
  "redironly.eval.example": { TXT: ["v=spf1 ip4:192.0.2.99 redirect=target.eval.example"] },
  "badmod.eval.example": { TXT: ["v=spf1 redirect:target.eval.example"] },
  "target.eval.example": { TXT: ["v=spf1 -all"] },
  // ALL
  "dot.all.example": { TXT: ["v=spf1 -all."] },
  "q.all.example": { TXT: ["v=spf1 ?all"] },
  "double.all.example": { TXT: ["v=spf1 +all -all"] },
  // PTR
  "20.2.0.192.in-addr.arpa": { PTR: ["mx.ptr.example"] },
  "mx.ptr.example": { A: ["192.0.2.20"] },
  "ptr.example": { TXT: ["v=spf1 ptr -all"] },
  "cidr.ptr.example": { TXT: ["v=spf1 ptr/24 -all"] },
  "other.ptr.example": { TXT: ["v=spf1 ptr -all"] },
  // A
  "a.a.example": { TXT: ["v=spf1 a -all"], A: [V4] },
  "cidr.a.example": { TXT: ["v=spf1 a:host.a.example/24 -all"] },
  "host.a.example": { A: ["192.0.2.1"] },
  "nx.a.example": { TXT: ["v=spf1 a:missing.a.example -all"] },
  "bad.a.example": { TXT: ["v=spf1 a/33 -all"] },
  "v6.a.example": { TXT: ["v=spf1 a -all"], AAAA: [V6] },
  "numeric.a.example": { TXT: ["v=spf1 a:111.222.33.44 -all"] },
  // include
  "fail.include.example": { TXT: ["v=spf1 include:minus.include.example ~all"] },
  "minus.include.example": { TXT: ["v=spf1 -all"] },
  "none.include.example": { TXT: ["v=spf1 include:nothing.include.example -all"] },
  "nothing.include.example": { A: [V4] },
  "temp.include.example": { TXT: ["v=spf1 include:slow.include.example -all"] },
  "slow.include.example": { drop: true },
  "pass.include.example": { TXT: ["v=spf1 include:ok.include.example -all"] },
  "ok.include.example": { TXT: ["v=spf1 ip4:192.0.2.0/24 -all"] },
  // MX
  "mx.mx.example": { TXT: ["v=spf1 mx -all"], MX: [[10, "mail.mx.example"]] },
  "mail.mx.example": { A: [V4] },
  "nomx.mx.example": { TXT: ["v=spf1 mx"] },
  "badcidr.mx.example": { TXT: ["v=spf1 mx/33 -all"] },
  // exists
  "ex.exists.example": { TXT: ["v=spf1 exists:%{ir}.list.exists.example -all"] },
  "10.2.0.192.list.exists.example": { A: ["127.0.0.2"] },
  "err.exists.example": { TXT: ["v=spf1 exists:broken.exists.example -all"] },
  "broken.exists.example": { servfail: true },
  "empty.exists.example": { TXT: ["v=spf1 exists -all"] },
  // ip4
  "net.ip4.example": { TXT: ["v=spf1 ip4:192.0.2.0/24 -all"] },
  "bad.ip4.example": { TXT: ["v=spf1 ip4:192.0.2.0/33 -all"] },
  "all.ip4.example": { TXT: ["v=spf1 ip4:0.0.0.0/0 -all"] },
  // ip6
  "net.ip6.example": { TXT: ["v=spf1 ip6:2001:db8::/32 -all"] },
  "bad.ip6.example": { TXT: ["v=spf1 ip6:2001:db8::/129 -all"] },
  "all.ip6.example": { TXT: ["v=spf1 ip6:::/0"] },
  // exp and modifiers
  "exp.exp.example": { TXT: ["v=spf1 -all exp=why.exp.example"] },
  "why.exp.example": { TXT: ["%{i} may not send mail for %{d}"] },
  "redirnone.exp.example": { TXT: ["v=spf1 redirect=nothing.exp.example"] },
  "nothing.exp.example": { A: [V4] },
  "twice.exp.example": { TXT: ["v=spf1 -all exp=why.exp.example exp=why.exp.example"] },
  "void.exp.example": { TXT: ["v=spf1 -all exp=missing.exp.example"] },
  // macros
  "l.macro.example": { TXT: ["v=spf1 exists:%{l}.users.macro.example -all"] },
  "alice.users.macro.example": { A: ["127.0.0.2"] },
  "h.macro.example": { TXT: ["v=spf1 exists:%{h}.helos.macro.example -all"] },
  "mail.client.example.helos.macro.example": { A: ["127.0.0.2"] },
  "bad.macro.example": { TXT: ["v=spf1 exists:%{q}.macro.example -all"] },
  "ir.macro.example": { TXT: ["v=spf1 -all exp=irexp.macro.example"] },
  "irexp.macro.example": { TXT: ["%{ir} and %{d2}"] },
  // processing limits
  "loop.limits.example": { TXT: ["v=spf1 include:loop.limits.example -all"] },
  "eleven.limits.example": { TXT: [`v=spf1 ${hosts(11, "h")} ip4:192.0.2.10 -all`] },
  "ten.limits.example": { TXT: [`v=spf1 ${hosts(10, "h")} ip4:192.0.2.10 -all`] },
  ...Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i + 1}.limits.example`, { A: ["192.0.2.99"] }])),
  "threevoid.limits.example": { TXT: [`v=spf1 ${hosts(3, "v")} ?all`] },
  "twovoid.limits.example": { TXT: [`v=spf1 ${hosts(2, "v")} ?all`] },
  // implementation bugs
  "cname.bugs.example": { TXT: ["v=spf1 a:www.bugs.example -all"] },
  "www.bugs.example": { CNAME: ["web.bugs.example"] },
  "web.bugs.example": { A: [V4] },
  "alias.bugs.example": { CNAME: ["cname.bugs.example"] },
  // the HELO identity, reject levels, headers
  "mail.helo.example": { TXT: ["v=spf1 ip4:192.0.2.10 -all"] },
  "pass.levels.example": { TXT: ["v=spf1 ip4:192.0.2.10 -all"] },
  "fail.levels.example": { TXT: ["v=spf1 -all"] },
  "softfail.levels.example": { TXT: ["v=spf1 ~all"] },
  "neutral.levels.example": { TXT: ["v=spf1 ?all"] },
  "none.levels.example": { A: [V4] },
  "permerror.levels.example": { TXT: ["v=spf1 foo -all"] },
  "temperror.levels.example": { drop: true },
  // bad input: a 10 KB record (TCP after a truncated UDP answer), and 10 KB of junk
  "big.bad.example": {
    TXT: [["v=spf1", ...Array.from({ length: 600 }, (_, i) => ` ip4:198.51.${i % 250}.${i % 200}`), " ip4:192.0.2.10 -all"]],
    truncate: true,
  },
  "junk.bad.example": { TXT: [["v=spf1 ", ..."x".repeat(10_000).match(/.{1,250}/g)!]], truncate: true },
};

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start(ZONE);
});
afterAll(() => dns.stop());

const CONFIG = { me: "mx.test.example", rcpthosts: "example.org" };

function opts(plugin: string, ip: string, extra: TestSessionOptions = {}): TestSessionOptions {
  return withDnsServer(dns, { plugins: [plugin, "rcpt_ok"], remoteIp: ip, ...extra, config: { ...CONFIG, ...extra.config } }, "0.2");
}

/** EHLO and MAIL through the plugin; the MAIL reply and the session. */
async function mail(from: string, { ip = V4, helo = "client.example", plugin = "sender_permitted_from" } = {}) {
  const t = await TestSession.start(opts(plugin, ip));
  await t.command(`EHLO ${helo}`);
  const r = await t.command(`MAIL FROM:<${from}>`);
  return { r, t, spf: t.transaction.notes("spfquery") };
}

/** [section, client IP, sender, HELO, expected result, expected exp= text] */
type Case = [string, string, string, string, string, string?];
const CASES: Case[] = [
  ["Initial processing", V4, "a@hosed.init.example", "client.example", "permerror"],
  ["Initial processing", V4, "a@spaces.init.example", "client.example", "fail"],
  ["Initial processing", V4, "a@trailing.init.example", "client.example", "pass"],
  ["Initial processing", V4, "a@ctrl.init.example", "client.example", "permerror"],
  ["Initial processing", V4, "", "notfqdn", "none"],
  ["Initial processing", V4, "", "[192.0.2.10]", "none"],
  ["Record lookup", V4, "a@slowtxt.lookup.example", "client.example", "temperror"],
  ["Record lookup", V4, "a@notxt.lookup.example", "client.example", "none"],
  ["Record lookup", V4, "a@gone.lookup.example", "client.example", "temperror"],
  ["Record lookup", V4, "a@nonexistent.lookup.example", "client.example", "none"],
  ["Selecting records", V4, "a@two.select.example", "client.example", "permerror"],
  ["Selecting records", V4, "a@spf10.select.example", "client.example", "none"],
  ["Selecting records", V4, "a@mixed.select.example", "client.example", "fail"],
  ["Selecting records", V4, "a@upper.select.example", "client.example", "softfail"],
  ["Selecting records", V4, "a@split.select.example", "client.example", "pass"],
  ["Record evaluation", V4, "a@anywhere.eval.example", "client.example", "permerror"],
  ["Record evaluation", V4, "a@default.eval.example", "client.example", "neutral"],
  ["Record evaluation", V4, "a@redirafter.eval.example", "client.example", "softfail"],
  ["Record evaluation", V4, "a@redironly.eval.example", "client.example", "fail"],
  ["Record evaluation", V4, "a@badmod.eval.example", "client.example", "permerror"],
  ["ALL mechanism syntax", V4, "a@dot.all.example", "client.example", "permerror"],
  ["ALL mechanism syntax", V4, "a@q.all.example", "client.example", "neutral"],
  ["ALL mechanism syntax", V4, "a@double.all.example", "client.example", "pass"],
  ["PTR mechanism syntax", "192.0.2.20", "a@ptr.example", "client.example", "pass"],
  ["PTR mechanism syntax", "192.0.2.20", "a@cidr.ptr.example", "client.example", "permerror"],
  ["PTR mechanism syntax", "192.0.2.20", "a@other.ptr.example", "client.example", "fail"],
  ["A mechanism syntax", V4, "a@a.a.example", "client.example", "pass"],
  ["A mechanism syntax", V4, "a@cidr.a.example", "client.example", "pass"],
  ["A mechanism syntax", V4, "a@nx.a.example", "client.example", "fail"],
  ["A mechanism syntax", V4, "a@bad.a.example", "client.example", "permerror"],
  ["A mechanism syntax", V6, "a@v6.a.example", "client.example", "pass"],
  ["A mechanism syntax", V4, "a@numeric.a.example", "client.example", "permerror"],
  ["Include mechanism semantics and syntax", V4, "a@fail.include.example", "client.example", "softfail"],
  ["Include mechanism semantics and syntax", V4, "a@none.include.example", "client.example", "permerror"],
  ["Include mechanism semantics and syntax", V4, "a@temp.include.example", "client.example", "temperror"],
  ["Include mechanism semantics and syntax", V4, "a@pass.include.example", "client.example", "pass"],
  ["MX mechanism syntax", V4, "a@mx.mx.example", "client.example", "pass"],
  ["MX mechanism syntax", V4, "a@nomx.mx.example", "client.example", "neutral"],
  ["MX mechanism syntax", V4, "a@badcidr.mx.example", "client.example", "permerror"],
  ["EXISTS mechanism syntax", V4, "a@ex.exists.example", "client.example", "pass"],
  ["EXISTS mechanism syntax", V4, "a@err.exists.example", "client.example", "temperror"],
  ["EXISTS mechanism syntax", V4, "a@empty.exists.example", "client.example", "permerror"],
  ["IP4 mechanism syntax", V4, "a@net.ip4.example", "client.example", "pass"],
  ["IP4 mechanism syntax", V4, "a@bad.ip4.example", "client.example", "permerror"],
  ["IP4 mechanism syntax", V6, "a@all.ip4.example", "client.example", "fail"],
  ["IP6 mechanism syntax", V6, "a@net.ip6.example", "client.example", "pass"],
  ["IP6 mechanism syntax", V6, "a@bad.ip6.example", "client.example", "permerror"],
  ["IP6 mechanism syntax", V4, "a@all.ip6.example", "client.example", "neutral"],
  [
    "Semantics of exp and other modifiers",
    V4,
    "a@exp.exp.example",
    "client.example",
    "fail",
    "192.0.2.10 may not send mail for exp.exp.example",
  ],
  ["Semantics of exp and other modifiers", V4, "a@redirnone.exp.example", "client.example", "permerror"],
  ["Semantics of exp and other modifiers", V4, "a@twice.exp.example", "client.example", "permerror"],
  ["Semantics of exp and other modifiers", V4, "a@void.exp.example", "client.example", "fail"],
  ["Macro expansion rules", V4, "alice@l.macro.example", "client.example", "pass"],
  ["Macro expansion rules", V4, "bob@l.macro.example", "client.example", "fail"],
  ["Macro expansion rules", V4, "a@h.macro.example", "mail.client.example", "pass"],
  ["Macro expansion rules", V4, "a@bad.macro.example", "client.example", "permerror"],
  ["Macro expansion rules", V4, "a@ir.macro.example", "client.example", "fail", "10.2.0.192 and macro.example"],
  ["Processing limits", V4, "a@loop.limits.example", "client.example", "permerror"],
  ["Processing limits", V4, "a@eleven.limits.example", "client.example", "permerror"],
  ["Processing limits", V4, "a@ten.limits.example", "client.example", "pass"],
  ["Processing limits", V4, "a@threevoid.limits.example", "client.example", "permerror"],
  ["Processing limits", V4, "a@twovoid.limits.example", "client.example", "neutral"],
  ["Test cases from implementation bugs", V4, "a@cname.bugs.example", "client.example", "pass"],
  ["Test cases from implementation bugs", V4, "a@alias.bugs.example", "client.example", "pass"],
];

describe("sender_permitted_from: every section of the RFC 7208 suite, with our own zone", () => {
  const sections = [...new Set(CASES.map((c) => c[0]))];
  test("the cases cover the suite's 16 sections", () => {
    expect(sections).toHaveLength(16);
  });
  for (const section of sections) {
    test(section, async () => {
      for (const [, ip, from, helo, want, explanation] of CASES.filter((c) => c[0] === section)) {
        const { r, spf } = await mail(from, { ip, helo });
        expect(r.code).toBe(250); // reject 0: annotate only
        expect(`${from || helo}: ${spf?.result}`).toBe(`${from || helo}: ${want}`);
        expect(spf!.scope).toBe(from ? "mfrom" : "helo");
        if (explanation) expect(spf!.explanation).toBe(explanation);
        else expect(spf!.explanation).toBeUndefined();
      }
    });
  }
});

describe("sender_permitted_from: the RFC 7208 suite (python3-spf's rfc7208-tests.yml)", () => {
  test("every case, through the plugin (SMTP where the identity is an SMTP path)", async () => {
    const suite = loadSuite();
    if (!suite) throw new Error(`${SUITE_PATH} is missing: install python3-spf (tools/install-deps.sh)`);
    const failed: string[] = [];
    let passed = 0;
    let viaSmtp = 0;
    for (const scenario of suite) {
      const server = await TestDnsServer.start(scenario.zone);
      try {
        for (const c of scenario.cases) {
          const got = await throughSmtp(server, c.host, c.mailfrom, c.helo) ?? await direct(server, c.host, c.mailfrom, c.helo);
          if (got.smtp) viaSmtp++;
          if (conforms(c, got.o.result, got.o.explanation)) passed++;
          else {failed.push(
              `${c.id}: want ${c.results.join("|")}${c.explanation ? ` "${c.explanation}"` : ""}, got ${got.o.result} "${
                got.o.explanation ?? ""
              }"`,
            );}
        }
      } finally {
        await server.stop();
      }
    }
    const total = suite.reduce((n, s) => n + s.cases.length, 0);
    console.log(`RFC 7208 suite: ${passed}/${total} pass (${viaSmtp} through SMTP sessions, ${total - viaSmtp} through checkSpf)`);
    for (const f of failed) console.log(`  not conforming: ${f}`);
    expect(total).toBe(203);
    // The one known difference: pyspf writes %{ir} of an IPv6 address in upper case, mailauth in
    // lower case as RFC 7208 §7.4's own example does; the result (fail) is right.
    expect(failed.map((f) => f.split(":")[0])).toEqual(["v-macro-ip6"]);
  }, 120_000);
});

/** The case as an SMTP session: EHLO, then MAIL; undefined when SMTP cannot carry the identity. */
async function throughSmtp(server: TestDnsServer, ip: string, from: string, helo: string) {
  if (/\s/.test(helo) || helo === "") return undefined;
  const at = from.lastIndexOf("@");
  const local = from.slice(0, at);
  const path = from === ""
    ? "<>"
    : `<${/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$/.test(local) ? local : JSON.stringify(local)}${from.slice(at)}>`;
  const t = await TestSession.start(withDnsServer(server, { plugins: ["sender_permitted_from"], remoteIp: ip, config: CONFIG }, "0.2"));
  if ((await t.command(`EHLO ${helo}`)).code !== 250) return undefined;
  if ((await t.command(`MAIL FROM:${path}`)).code !== 250) return undefined;
  return { o: t.transaction.notes("spfquery")!, smtp: true };
}

/** The case through the plugin's check, for identities SMTP cannot carry (`@example.net`). */
async function direct(server: TestDnsServer, ip: string, from: string, helo: string) {
  const resolver = new DnsResolver({ servers: [{ host: "127.0.0.1", port: server.port }], timeoutMs: 200 });
  return { o: await checkSpf(resolver, { ip, sender: from, helo, me: "mx.test.example" }), smtp: false };
}

describe("sender_permitted_from: qpsmtpd's reject levels", () => {
  // The MAIL reply for each result at levels 1 to 6 (DENY 550, DENYSOFT 450).
  const TABLE: Record<string, number[]> = {
    pass: [250, 250, 250, 250, 250, 250],
    fail: [250, 450, 550, 550, 550, 550],
    softfail: [250, 250, 450, 550, 550, 550],
    neutral: [250, 250, 250, 250, 550, 550],
    none: [250, 250, 250, 250, 250, 550],
    permerror: [250, 250, 250, 450, 450, 550],
    temperror: [250, 450, 450, 450, 450, 450],
  };
  for (const [result, codes] of Object.entries(TABLE)) {
    test(result, async () => {
      const got: number[] = [];
      for (let level = 1; level <= 6; level++) {
        const { r, spf } = await mail(`a@${result}.levels.example`, { plugin: `sender_permitted_from reject ${level}` });
        expect(spf?.result).toBe(result as SpfOutcome["result"]);
        got.push(r.code);
      }
      expect(got).toEqual(codes);
    });
  }
  test("the reply texts name the result and the reason; exp= text on fail", async () => {
    expect((await mail("a@exp.exp.example", { plugin: "sender_permitted_from reject 3" })).r.text).toBe(
      "SPF - forgery: 192.0.2.10 may not send mail for exp.exp.example",
    );
    expect((await mail("a@softfail.levels.example", { plugin: "sender_permitted_from reject 4" })).r.text).toBe(
      "SPF - fail: mx.test.example: domain of transitioning a@softfail.levels.example does not designate 192.0.2.10 as permitted sender",
    );
    const temp = await mail("a@temperror.levels.example", { plugin: "sender_permitted_from reject 2" });
    expect(temp.r.text).toMatch(/^SPF - temperror: /);
    expect(temp.t.logs.some((l) => l.message.includes("temperror, refused at level 2"))).toBe(true);
  });
  test("spf_deny 1|2 are levels 3|4; the spfbehavior file gives the level; a bad level stops loading", async () => {
    expect((await mail("a@fail.levels.example", { plugin: "sender_permitted_from spf_deny 1" })).r.code).toBe(550);
    expect((await mail("a@softfail.levels.example", { plugin: "sender_permitted_from spf_deny 1" })).r.code).toBe(450);
    expect((await mail("a@softfail.levels.example", { plugin: "sender_permitted_from spf_deny 2" })).r.code).toBe(550);
    const t = await TestSession.start(opts("sender_permitted_from", V4, { config: { spfbehavior: "3" } }));
    await t.command("EHLO client.example");
    expect((await t.command("MAIL FROM:<a@fail.levels.example>")).code).toBe(550);
    await expect(TestSession.start(opts("sender_permitted_from reject 9", V4))).rejects.toThrow(/reject "9"/);
  });
  test("karma: +1 on pass, -1 on fail", async () => {
    expect((await mail("a@pass.levels.example")).t.connection.notes("karma")).toBe(1);
    expect((await mail("a@fail.levels.example")).t.connection.notes("karma")).toBe(-1);
  });
});

describe("sender_permitted_from: identities, skips and headers", () => {
  /** Sends one message; the header as queued. */
  async function message(t: TestSession, from: string): Promise<string> {
    let header = "";
    t.mockHook("queue", (txn) => ((header = txn.header()!.as_string()), OK));
    await t.command(`MAIL FROM:<${from}>`);
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("Subject: x\n\nbody\n")).code).toBe(250);
    return header;
  }
  test("Received-SPF first, as qpsmtpd writes it, and spf= in the one Authentication-Results", async () => {
    const t = await TestSession.start(opts("sender_permitted_from", V4));
    await t.command("EHLO client.example");
    const h = await message(t, "a@net.ip4.example");
    const lines = h.split("\n");
    expect(lines[0]).toBe("Authentication-Results: mx.test.example; auth=none; spf=pass smtp.mailfrom=net.ip4.example");
    expect(lines[1]).toMatch(/^Received: /);
    expect(h).toContain(
      'Received-SPF: pass (mx.test.example: domain of a@net.ip4.example designates 192.0.2.10 as permitted sender) receiver=mx.test.example; identity=mailfrom; envelope-from="a@net.ip4.example"; helo=client.example; client-ip=192.0.2.10\n',
    );
    // A second message on the same connection has its own result only.
    const second = await message(t, "a@fail.levels.example");
    expect(second.split("\n")[0]).toBe("Authentication-Results: mx.test.example; auth=none; spf=fail smtp.mailfrom=fail.levels.example");
    expect(second.match(/Received-SPF:/g)).toHaveLength(1);
  });
  test("the null sender: the HELO name is checked", async () => {
    const t = await TestSession.start(opts("sender_permitted_from reject 3", V4));
    await t.command("EHLO mail.helo.example");
    const h = await message(t, "");
    expect(t.transaction.notes("dmarc_spf")).toBeUndefined(); // the transaction ended with the message
    expect(h).toContain(
      "Received-SPF: pass (mx.test.example: domain of postmaster@mail.helo.example designates 192.0.2.10 as permitted sender) receiver=mx.test.example; identity=helo; helo=mail.helo.example; client-ip=192.0.2.10\n",
    );
    expect(h).toContain("spf=pass smtp.helo=mail.helo.example");
    const other = await TestSession.start(opts("sender_permitted_from reject 3", "192.0.2.99"));
    await other.command("EHLO mail.helo.example");
    expect((await other.command("MAIL FROM:<>")).code).toBe(550);
  });
  test("relay clients and authenticated users are not checked; dmarc sees a pass", async () => {
    const t = await TestSession.start(opts("sender_permitted_from reject 6", V4));
    t.connection.relay_client(true);
    await t.command("EHLO client.example");
    const r = await t.command("MAIL FROM:<a@fail.levels.example>");
    expect(r.code).toBe(250);
    expect(t.transaction.notes("spfquery")).toBeUndefined();
    expect(t.transaction.notes("dmarc_spf")).toEqual({ domain: "fail.levels.example", scope: "mfrom", result: "pass" });
    const auth = await TestSession.start(opts("sender_permitted_from reject 6", V4, {
      plugins: ["auth/auth_flat_file", "sender_permitted_from reject 6", "rcpt_ok"],
      config: { flat_auth_pw: "alice@example.org:secret" },
    }));
    await auth.command("EHLO client.example");
    expect((await auth.command(`AUTH PLAIN ${Buffer.from("\0alice@example.org\0secret").toString("base64")}`)).code).toBe(235);
    expect((await auth.command("MAIL FROM:<a@fail.levels.example>")).code).toBe(250);
  });
  test("spf_pass_host and dmarc_spf notes", async () => {
    const { t } = await mail("a@Net.IP4.example");
    expect(t.transaction.notes("spf_pass_host")).toBe("net.ip4.example");
    expect(t.transaction.notes("dmarc_spf")).toEqual({ domain: "net.ip4.example", scope: "mfrom", result: "pass" });
  });
  test("receivedSpf quotes values that are not atoms", () => {
    const o: SpfOutcome = { result: "none", scope: "helo", identity: "a b", domain: "a b", ip: V4, helo: "a b", comment: "x (y)" };
    expect(receivedSpf(o, "mx")).toBe('none (x \\(y\\)) receiver=mx; identity=helo; helo="a b"; client-ip=192.0.2.10');
  });
});

describe("sender_permitted_from: bad input gets a result, a log line, no crash", () => {
  test("a server that never answers: temperror, logged", async () => {
    const { r, t, spf } = await mail("a@gone.lookup.example");
    expect(r.code).toBe(250);
    expect(spf?.result).toBe("temperror");
    expect(t.logs.some((l) => l.plugin === "sender_permitted_from" && l.message.startsWith("temperror, tolerated"))).toBe(true);
  });
  test("a 10 KB record comes over TCP and is evaluated; 10 KB of junk is permerror", async () => {
    expect((await mail("a@big.bad.example")).spf?.result).toBe("pass");
    const junk = await mail("a@junk.bad.example");
    expect(junk.spf?.result).toBe("permerror");
    expect(junk.t.logs.some((l) => l.message.startsWith("permerror"))).toBe(true);
    expect(dns.queries.filter((q) => q === "TXT big.bad.example").length).toBeGreaterThanOrEqual(2); // UDP, then TCP
  });
  test("an include loop and more than 10 lookups are permerror; more than 2 void lookups too", async () => {
    for (const d of ["loop", "eleven", "threevoid"]) {
      const { spf } = await mail(`a@${d}.limits.example`);
      expect(spf?.result).toBe("permerror");
      expect(spf?.comment).toMatch(/Too many DNS requests|Too many void DNS results/);
    }
  });
});

describe("sender_permitted_from: no_dmarc_policy with the dmarc plugin", () => {
  const send = async (from: string, fromHeader: string, args: string) => {
    const line = `sender_permitted_from reject 1 ${args}`.trim(); // no empty last word
    const t = await TestSession.start(opts(line, V4, { plugins: [line, "dmarc reject 0", "rcpt_ok"] }));
    t.mockHook("queue", () => OK);
    await t.command("EHLO client.example");
    await t.command(`MAIL FROM:<${from}>`);
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    return t.data(`From: ${fromHeader}\nSubject: x\n\nbody\n`);
  };
  test("refuses at data_post when the From domain has no DMARC record; not with a record", async () => {
    dns.zone["_dmarc.withpolicy.example"] = { TXT: ["v=DMARC1; p=none"] };
    expect((await send("a@fail.levels.example", "a@fail.levels.example", "no_dmarc_policy 1")).code).toBe(552);
    expect((await send("a@softfail.levels.example", "a@softfail.levels.example", "no_dmarc_policy 1")).code).toBe(250);
    expect((await send("a@softfail.levels.example", "a@softfail.levels.example", "no_dmarc_policy 2")).code).toBe(552);
    expect((await send("a@fail.levels.example", "a@withpolicy.example", "no_dmarc_policy 4")).code).toBe(250);
    expect((await send("a@fail.levels.example", "a@fail.levels.example", "")).code).toBe(250);
  });
});

describe("sender_permitted_from: pyspf (Debian python3-spf) agrees", () => {
  test("a handful of cases over the same zone", async () => {
    const cases: Array<[string, string, string]> = [
      [V4, "a@net.ip4.example", "client.example"],
      [V4, "a@fail.levels.example", "client.example"],
      [V4, "a@fail.include.example", "client.example"],
      [V4, "a@two.select.example", "client.example"],
      [V4, "a@notxt.lookup.example", "client.example"],
      [V4, "a@default.eval.example", "client.example"],
      ["192.0.2.20", "a@ptr.example", "client.example"],
      [V4, "alice@l.macro.example", "client.example"],
      [V4, "a@eleven.limits.example", "client.example"],
      [V6, "a@net.ip6.example", "client.example"],
      [V4, "", "mail.helo.example"],
    ];
    const py = [
      "import sys, json, dns.resolver, spf",
      "r = dns.resolver.Resolver(configure=False)",
      "r.nameservers = ['127.0.0.1']",
      `r.port = ${dns.port}`,
      "dns.resolver.default_resolver = r",
      "for line in sys.stdin:",
      "    i, s, h = json.loads(line)",
      "    print(spf.check2(i=i, s=s, h=h)[0])",
    ].join("\n");
    const { code, out } = await run(["/usr/bin/python3", "-c", py], cases.map((c) => JSON.stringify(c)).join("\n") + "\n");
    expect(code).toBe(0);
    const theirs = out.trim().split("\n");
    const ours: string[] = [];
    for (const [ip, from, helo] of cases) ours.push((await mail(from, { ip, helo })).spf!.result);
    expect(ours).toEqual(theirs);
  });
});

describe("sender_permitted_from: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("sender_permitted_from spf_dney 1", "spf_dney");
  });
});
