/**
 * dmarc: policies, alignment, subdomain and pct policies, the organisational domain from the
 * Public Suffix List, broken From fields and broken DNS; records on a loopback DNS server. SPF
 * and DKIM results come from the real plugins (and dkimpy) in one test, from notes elsewhere.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { organisationalDomain, parseAddresses, parseRecord } from "../../plugins/dmarc.ts";
import { TestDnsServer } from "../helpers/dns_server.ts";
import { dkimpySign, makeKey } from "../helpers/dkimpy.ts";
import { withDnsServer } from "../helpers/sessions.ts";
import { expectUnknownArgument, loadWarnings } from "../helpers/plugin_args.ts";

const key = makeKey("k1");
let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start({
    "_dmarc.reject.example": { TXT: ["v=DMARC1; p=reject; rua=mailto:dmarc@reject.example"] },
    "_dmarc.quar.example": { TXT: ["v=DMARC1; p=quarantine"] },
    "_dmarc.none.example": { TXT: ["v=DMARC1; p=none"] },
    "_dmarc.strict.example": { TXT: ["v=DMARC1; p=reject; adkim=s; aspf=s"] },
    "_dmarc.sub.example": { TXT: ["v=DMARC1; p=none; sp=reject"] },
    "_dmarc.pct.example": { TXT: ["v=DMARC1; p=reject; pct=0"] },
    "_dmarc.example.co.uk": { TXT: ["v=DMARC1; p=reject"] },
    "_dmarc.twice.example": { TXT: ["v=DMARC1; p=reject", "v=DMARC1; p=none"] },
    "_dmarc.badp.example": { TXT: ["v=DMARC1; p=bogus"] },
    "_dmarc.badprua.example": { TXT: ["v=DMARC1; p=bogus; rua=mailto:r@badprua.example"] },
    "_dmarc.slow.example": { drop: true },
    "_dmarc.huge.example": { TXT: [["v=DMARC1; p=reject; ", ..."x=y; ".repeat(2_500).match(/.{1,250}/g)!]], truncate: true },
    "_dmarc.signed.example": { TXT: ["v=DMARC1; p=reject"] },
    "signed.example": { TXT: ["v=spf1 -all"] },
    "k1._domainkey.signed.example": { TXT: [key.txt] },
  });
});
afterAll(() => dns.stop());

interface Auth {
  spf?: { domain: string; result: string };
  dkim?: Array<{ domain: string; result: string }>;
}

function opts(plugin: string, extra: TestSessionOptions = {}): TestSessionOptions {
  return withDnsServer(dns, {
    plugins: [plugin, "rcpt_ok"],
    remoteIp: "192.0.2.10",
    ...extra,
    config: { me: "mx.test.example", rcpthosts: "example.org", ...extra.config },
  }, "0.3");
}

/** One message with `header` lines; SPF and DKIM results given as notes. */
async function deliver(header: string, auth: Auth = {}, plugin = "dmarc") {
  const t = await TestSession.start(opts(plugin));
  t.mockHook("data_post_headers", (txn) => {
    if (auth.spf) txn.notes("dmarc_spf", { ...auth.spf, scope: "mfrom" });
    if (auth.dkim) txn.notes("dkim_results", auth.dkim.map((d) => ({ ...d, selector: "s" })));
  });
  let queued = "";
  t.mockHook("queue", (txn) => ((queued = txn.header()!.as_string()), OK));
  await t.command("EHLO client.example");
  await t.command("MAIL FROM:<bounce@example.net>");
  await t.command("RCPT TO:<b@example.org>");
  await t.command("DATA");
  const r = await t.data(`${header}\nSubject: x\n\nbody\n`);
  const ar = /^Authentication-Results: (.*)$/m.exec(queued)?.[1] ?? "";
  return { r, t, queued, ar, result: t.logs.find((l) => l.plugin === "dmarc")?.message ?? "" };
}

describe("dmarc policies", () => {
  test("p=reject without an aligned pass: 550 5.7.1; with reject 0 accepted and marked", async () => {
    const { r, t } = await deliver("From: a@reject.example", { spf: { domain: "example.net", result: "pass" } });
    expect([r.code, r.lines.join("\n")]).toEqual([550, "5.7.1 failed DMARC policy of reject.example"]);
    expect(t.logs.some((l) => l.plugin === "dmarc" && l.message.startsWith("fail, disposition reject"))).toBe(true);
    const off = await deliver("From: a@reject.example", {}, "dmarc reject 0");
    expect(off.r.code).toBe(250);
    expect(off.ar).toBe("mx.test.example; auth=none; dmarc=fail (p=reject dis=reject) header.from=reject.example");
    expect(off.queued).toContain("X-DMARC-Disposition: reject (header.from=reject.example p=reject; not enforced)\n");
    expect((await deliver("From: a@reject.example", {}, "dmarc reject 1 reject_type temp")).r.code).toBe(452);
  });
  test("after HELO (no ESMTP) the refusal carries no enhanced status code", async () => {
    const t = await TestSession.start(opts("dmarc"));
    await t.command("HELO client.example");
    await t.command("MAIL FROM:<bounce@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    const r = await t.data("From: a@reject.example\n\nbody\n");
    expect([r.code, r.lines.join("\n")]).toEqual([550, "failed DMARC policy of reject.example"]);
  });
  test("p=quarantine: accepted with a header recording the policy, never deferred", async () => {
    const { r, queued, ar, t } = await deliver("From: a@quar.example");
    expect(r.code).toBe(250);
    expect(queued).toContain("X-DMARC-Disposition: quarantine (header.from=quar.example p=quarantine)\n");
    expect(ar).toContain("dmarc=fail (p=quarantine dis=quarantine) header.from=quar.example");
    expect(t.connection.notes("karma")).toBe(-3);
  });
  test("p=none: accepted, no disposition header", async () => {
    const { r, queued, ar } = await deliver("From: a@none.example");
    expect(r.code).toBe(250);
    expect(queued).not.toContain("X-DMARC-Disposition");
    expect(ar).toContain("dmarc=fail (p=none dis=none) header.from=none.example");
  });
  test("a From domain without a record: none, reason no policy", async () => {
    const { r, ar, t } = await deliver("From: a@norecord.example");
    expect(r.code).toBe(250);
    expect(ar).toContain("dmarc=none header.from=norecord.example");
    expect(t.logs.some((l) => l.plugin === "dmarc" && l.message.startsWith("none, no policy"))).toBe(true);
  });
  test("the subdomain policy sp applies below the record's domain; p at it", async () => {
    expect((await deliver("From: a@mail.sub.example")).r.code).toBe(550);
    expect((await deliver("From: a@sub.example")).r.code).toBe(250);
  });
  test("pct=0: the policy applies to no message, the next weaker one does (reject → quarantine)", async () => {
    const { r, queued } = await deliver("From: a@pct.example");
    expect(r.code).toBe(250);
    expect(queued).toContain("X-DMARC-Disposition: quarantine (header.from=pct.example p=reject)");
  });
  test("the organisational domain comes from the Public Suffix List", async () => {
    dns.queries.length = 0;
    expect((await deliver("From: a@mail.example.co.uk")).r.code).toBe(550);
    expect(dns.queries).toContain("TXT _dmarc.example.co.uk");
    expect(dns.queries).not.toContain("TXT _dmarc.co.uk");
    expect(await organisationalDomain("a.b.example.co.uk")).toBe("example.co.uk");
    expect(await organisationalDomain("x.user.github.io")).toBe("user.github.io");
    expect(await organisationalDomain("www.city.kawasaki.jp")).toBe("city.kawasaki.jp");
  });
  test("two records, or a record with a bad p: no policy; a bad p with rua: p=none", async () => {
    expect((await deliver("From: a@twice.example")).ar).toContain("dmarc=none");
    expect((await deliver("From: a@badp.example")).ar).toContain("dmarc=none");
    expect((await deliver("From: a@badprua.example")).ar).toContain("dmarc=fail (p=none dis=none)");
  });
});

describe("dmarc alignment", () => {
  test("relaxed: an SPF or DKIM pass for a domain under the same organisational domain", async () => {
    expect((await deliver("From: a@reject.example", { spf: { domain: "bounces.reject.example", result: "pass" } })).ar).toContain(
      "dmarc=pass (p=reject dis=none) header.from=reject.example",
    );
    expect((await deliver("From: a@mail.reject.example", { dkim: [{ domain: "reject.example", result: "pass" }] })).r.code).toBe(250);
    // A failing signature or SPF result does not align.
    expect((await deliver("From: a@reject.example", { spf: { domain: "reject.example", result: "softfail" } })).r.code).toBe(550);
    expect((await deliver("From: a@reject.example", { dkim: [{ domain: "reject.example", result: "fail" }] })).r.code).toBe(550);
    // Another organisational domain does not align, however it ends.
    expect((await deliver("From: a@reject.example", { dkim: [{ domain: "evilreject.example", result: "pass" }] })).r.code).toBe(550);
  });
  test("strict (adkim=s, aspf=s): only the From domain itself", async () => {
    expect((await deliver("From: a@strict.example", { spf: { domain: "bounces.strict.example", result: "pass" } })).r.code).toBe(550);
    expect((await deliver("From: a@strict.example", { dkim: [{ domain: "mail.strict.example", result: "pass" }] })).r.code).toBe(550);
    expect((await deliver("From: a@strict.example", { dkim: [{ domain: "strict.example", result: "pass" }] })).r.code).toBe(250);
    expect((await deliver("From: a@strict.example", { spf: { domain: "Strict.Example", result: "pass" } })).r.code).toBe(250);
  });
  test("with the real sender_permitted_from and dkim: one Authentication-Results with every method", async () => {
    const t = await TestSession.start(opts("sender_permitted_from", { plugins: ["sender_permitted_from", "dkim", "dmarc", "rcpt_ok"] }));
    let queued = "";
    t.mockHook("queue", (txn) => ((queued = txn.header()!.as_string()), OK));
    await t.command("EHLO client.example");
    await t.command("MAIL FROM:<a@signed.example>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    const msg = await dkimpySign("From: a@signed.example\nTo: b@example.org\nSubject: s\n\nhi\n", { domain: "signed.example", key });
    expect((await t.data(msg)).code).toBe(250);
    const ar = queued.split("\n").filter((l) => l.startsWith("Authentication-Results:"));
    expect(ar).toHaveLength(1);
    expect(ar[0]).toMatch(
      /^Authentication-Results: mx\.test\.example; auth=none; spf=fail smtp\.mailfrom=signed\.example; dkim=pass header\.d=signed\.example .*; dmarc=pass \(p=reject dis=none\) header\.from=signed\.example$/,
    );
    expect(t.logs.some((l) => l.plugin === "dmarc" && l.message.startsWith("pass"))).toBe(true);
  });
  test("relay clients are not checked", async () => {
    const t = await TestSession.start(opts("dmarc"));
    t.connection.relay_client(true);
    t.mockHook("queue", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@reject.example>");
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    expect((await t.data("From: a@reject.example\n\nx\n")).code).toBe(250);
    expect(t.logs.some((l) => l.message === "skip, relay client")).toBe(true);
  });
});

describe("dmarc: bad input gets a result, a log line, no crash", () => {
  test("no From field, two From fields, authors in two domains: permerror, never a pass", async () => {
    const aligned = { spf: { domain: "reject.example", result: "pass" } };
    for (
      const [header, reason] of [
        ["Sender: a@reject.example", "no From field"],
        ["From: a@reject.example\nFrom: b@reject.example", "2 From fields"],
        ["From: a@reject.example, b@other.example", "authors in 2 domains"],
        ["From: undisclosed", "an address in From has no valid domain"],
      ]
    ) {
      const on = await deliver(header!, aligned);
      expect([header, on.r.code, on.r.lines.join("\n")]).toEqual([header, 550, `5.7.1 DMARC cannot be evaluated: ${reason}`]);
      const off = await deliver(header!, aligned, "dmarc reject 0");
      expect(off.r.code).toBe(250);
      expect(off.ar).toContain(`dmarc=permerror (${reason})`);
      expect(off.result).toContain(`permerror, ${reason}`);
    }
  });
  test("a DNS server that never answers: temperror, accepted, logged", async () => {
    const { r, ar, t } = await deliver("From: a@slow.example");
    expect(r.code).toBe(250);
    expect(ar).toContain("dmarc=temperror header.from=slow.example");
    expect(t.logs.some((l) => l.plugin === "dmarc" && l.message.startsWith("temperror"))).toBe(true);
  });
  test("a 10 KB record comes over TCP and is read", async () => {
    expect((await deliver("From: a@huge.example")).r.code).toBe(550);
  });
  test("From parsing: display names, comments, groups, routes, quoted @", () => {
    expect(parseAddresses('"a@evil.example" <b@good.example>')).toEqual(["b@good.example"]);
    expect(parseAddresses("Alice (a@evil.example) <alice@good.example>, bob@good.example")).toEqual([
      "alice@good.example",
      "bob@good.example",
    ]);
    expect(parseAddresses('friends: a@x.example, "q,@" <b@y.example>;')).toEqual(["a@x.example", "b@y.example"]);
    expect(parseAddresses("<@route.example:c@z.example>")).toEqual(["c@z.example"]);
    expect(parseAddresses('"weird@quoted"@q.example')).toEqual(['"weird@quoted"@q.example']);
    expect(parseAddresses("undisclosed-recipients:;")).toEqual([]);
    expect(parseRecord("v=DMARC1; p=Reject; sp=none; adkim=s; pct=50")).toEqual({
      p: "reject",
      sp: "none",
      adkim: "s",
      aspf: "r",
      pct: 50,
    });
    expect(parseRecord("v=DMARC1; sp=reject")).toBeUndefined();
  });
});

describe("dmarc: unknown arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("dmarc reprting 1", "reprting");
  });
  test("qpsmtpd's reporting loads and says once that it does nothing; reporting 0 says nothing", async () => {
    const on = await loadWarnings("dmarc reporting 1");
    expect(on.log.match(/dmarc: reporting 1 has no effect: no aggregate reports are sent/g)).toHaveLength(1);
    expect((await loadWarnings("dmarc reporting 0 reject 0")).log).not.toContain("no effect");
  });
});
