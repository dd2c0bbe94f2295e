/**
 * The harness plugin authors get as "qpsmtpd/testing": pre-connection hooks, a fake clock, DNS
 * from a map, the log, and no files left behind.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { DECLINED, DENY, DENYSOFT, DnsError, type Hooks, LOGINFO } from "qpsmtpd";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";

describe("TestSession", () => {
  test("runs pre-connection hooks first; a refusal is the only reply and the session never starts", async () => {
    const seen: string[] = [];
    const hosts: Hooks["pre-connection"] = (_t, info) => {
      seen.push(`${info.remote_ip} ${info.child_addrs.length} ${info.max_conn_ip}`);
      return info.remote_ip === "192.0.2.66" ? [DENYSOFT, "go away for now"] : DECLINED;
    };
    const refused = await TestSession.start({
      modules: { hosts: { hook_pre_connection: hosts } },
      plugins: ["hosts"],
      remoteIp: "192.0.2.66",
      otherConnections: ["192.0.2.66"],
      maxConnIp: 3,
    });
    expect(refused.replies).toEqual([{ code: 451, lines: ["go away for now"], status: "", text: "go away for now" }]);
    expect(refused.closed).toBe(true);
    expect(() => refused.connection).toThrow("refused before its session started");
    const served = await TestSession.start({
      modules: { hosts: { hook_pre_connection: hosts } },
      plugins: ["hosts"],
      remoteIp: "192.0.2.1",
    });
    expect(served.greeting?.code).toBe(220);
    expect(seen).toEqual(["192.0.2.66 1 3", "192.0.2.1 0 0"]);
  });

  test("with a fake clock, the command timeout fires when the clock passes it, not before", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, config: { timeout: "60" } });
    await clock.advance(59_000);
    expect(t.closed).toBe(false);
    await clock.advance(1_000);
    expect(t.replies.at(-1)).toMatchObject({ code: 421, status: "4.4.2", text: "Connection timed out, closing" });
    expect(t.closed).toBe(true);
  });

  test("answers DNS from a zone map, telling NXDOMAIN, NODATA and failures apart", async () => {
    const results: unknown[] = [];
    const probe: Hooks["mail"] = async function (_t, sender) {
      const host = sender.host!;
      for (const type of ["MX", "A"] as const) {
        try {
          results.push(await this.dns.resolve(host, type as "A"));
        } catch (e) {
          results.push((e as DnsError).code);
        }
      }
      results.push(await this.dns.resolve_ptr(this.connection.remote_ip));
      return (await this.dns.resolve_mx(host)).length ? DECLINED : [DENY, "no MX"];
    };
    const t = await TestSession.start({
      modules: { probe: { hook_mail: probe } },
      plugins: ["probe"],
      remoteIp: "192.0.2.25",
      dns: {
        "example.net": { MX: [[20, "mx2.example.net"], [10, "mx1.example.net"]] },
        "25.2.0.192.in-addr.arpa": { PTR: ["mx1.example.net"] },
        "slow.example": "TIMEOUT",
      },
    });
    await t.command("HELO c");
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(250);
    expect(results).toEqual([[{ priority: 10, exchange: "mx1.example.net" }, { priority: 20, exchange: "mx2.example.net" }], "NODATA", [
      "mx1.example.net",
    ]]);
    await t.command("RSET");
    expect(await t.command("MAIL FROM:<a@nowhere.example>")).toMatchObject({ code: 550, text: "no MX" });
    expect(results.slice(3, 5)).toEqual(["NXDOMAIN", "NXDOMAIN"]);
    await t.command("RSET");
    // A lookup that fails for a while is an error a plugin can tell from "no such name".
    expect((await t.command("MAIL FROM:<a@slow.example>")).code).toBe(250);
    expect(results.slice(6, 8)).toEqual(["TIMEOUT", "TIMEOUT"]);
  });

  test("keeps every log line", async () => {
    const t = await TestSession.start({
      modules: {
        chatty: {
          hook_helo(_t, host) {
            this.log(LOGINFO, `hello ${host}`);
            return DECLINED;
          },
        },
      },
      plugins: ["chatty"],
    });
    await t.command("HELO there");
    expect(t.logs).toContainEqual({ level: LOGINFO, hook: "helo", plugin: "chatty", message: "hello there" });
  });

  test("leaves no directory behind", async () => {
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith("qpsmtpd-test-")).length;
    const t = await TestSession.start({ plugins: ["rcpt_ok"], config: { rcpthosts: "example.org" } });
    await t.command("QUIT");
    await t.done;
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("qpsmtpd-test-")).length).toBe(before);
  });
});

describe("FakeClock", () => {
  test("fires timers in due order, only when advanced past them; cancelled ones never", async () => {
    const clock = new FakeClock(1_000);
    const fired: string[] = [];
    clock.after(300, () => fired.push("b"));
    clock.after(100, () => fired.push("a"));
    const c = clock.after(200, () => fired.push("never"));
    c.cancel();
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(250);
    expect(fired).toEqual(["a", "b"]);
    expect(clock.now()).toBe(1_349);
    expect(clock.pending).toBe(0);
  });
});
