import { describe, expect, test } from "bun:test";
import { DENY, OK } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

const XCLIENT_LINE = "XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT";

describe("XCLIENT", () => {
  test("advertised and accepted only for xclient_hosts; others get 550 5.7.0", async () => {
    const t = await TestSession.start({ config: { xclient_hosts: ["10.9.0.0/16"] } });
    expect((await t.command("EHLO c")).lines).not.toContain(XCLIENT_LINE);
    const r = await t.command("XCLIENT ADDR=192.0.2.7");
    expect([r.code, r.status]).toEqual([550, "5.7.0"]);
    expect(t.connection.remote_ip).toBe("127.0.0.1");
  });

  test("the session starts again as the reported client: connect hooks, greeting, plugins see it", async () => {
    const t = await TestSession.start({ config: { xclient_hosts: ["127.0.0.1"] }, remoteIp: "127.0.0.1" });
    const seen: string[] = [];
    t.mockHook("connect", function () {
      seen.push(`${this.connection.remote_ip}:${this.connection.remote_port} ${this.connection.remote_host}`);
      return this.connection.remote_ip === "192.0.2.66" ? [DENY, "go away"] : OK;
    });
    t.mockHook("rcpt", () => OK);
    expect((await t.command("EHLO proxy")).lines).toContain(XCLIENT_LINE);
    const r = await t.command("XCLIENT ADDR=192.0.2.7 PORT=4242 NAME=client.example HELO=client+2Eexample LOGIN=[UNAVAILABLE]");
    expect(r.code).toBe(220);
    expect(seen).toEqual(["192.0.2.7:4242 client.example"]);
    expect(t.connection.remote_ip).toBe("192.0.2.7");
    expect(t.connection.hello_host).toBe("client.example");
    expect(t.connection.relay_client()).toBe(false);
    // Greet again; XCLIENT is still offered (it was decided for the proxy's own address).
    expect((await t.command("EHLO client.example")).lines).toContain(XCLIENT_LINE);
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("XCLIENT ADDR=192.0.2.8")).code).toBe(503);
    await t.command("RSET");
    const denied = await t.command("XCLIENT ADDR=192.0.2.66");
    expect([denied.code, denied.text]).toEqual([550, "go away"]);
    expect(t.closed).toBe(true);
  });

  test("LOGIN makes the session authenticated and a relay client; IPv6 addresses", async () => {
    const t = await TestSession.start({ config: { xclient_hosts: ["127.0.0.0/8"] } });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO proxy");
    expect((await t.command("XCLIENT ADDR=IPV6:2001:db8::5 LOGIN=alice DESTADDR=192.0.2.1 DESTPORT=587")).code).toBe(220);
    expect(t.connection.remote_ip).toBe("2001:db8::5");
    expect([t.connection.local_ip, t.connection.local_port]).toEqual(["192.0.2.1", 587]);
    expect(t.qp.auth_user).toBe("alice");
    expect(t.connection.relay_client()).toBe(true);
    expect(t.logs.some((l) => l.message.includes("alice"))).toBe(false);
  });

  test("bad attributes and values are 501 and change nothing", async () => {
    const t = await TestSession.start({ config: { xclient_hosts: ["127.0.0.1"] } });
    await t.command("EHLO proxy");
    for (const bad of ["", "FOO=1", "ADDR=300.1.1.1", "ADDR=2001:db8::1", "PORT=70000", "PROTO=HTTP", "NAME=a+zz", "ADDR"]) {
      expect((await t.command(`XCLIENT ${bad}`)).code).toBe(501);
    }
    expect(t.connection.remote_ip).toBe("127.0.0.1");
  });
});
