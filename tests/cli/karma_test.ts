/**
 * `qpsmtpd karma` (src/cli/karma.ts) on a real store, checked against the karma plugin itself:
 * an address captured by the tool is refused by the plugin, and released lets it in again.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { karmaTool } from "../../src/cli/karma.ts";
import { storeIn } from "../../src/store/store.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";

async function tool(dir: string, clock: FakeClock, ...args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await karmaTool(args, { store: storeIn(dir, () => clock.now()), now: () => clock.now(), out: (l) => out.push(l) });
  return { code, out };
}

describe("qpsmtpd karma", () => {
  test("capture puts an address in the karma plugin's penalty box; release takes it out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkarma-"));
    const clock = new FakeClock();
    const session = () => TestSession.start({ clock, plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.99" });
    expect((await session()).greeting?.code).toBe(220);
    const c = await tool(dir, clock, "capture", "192.0.2.99", "2");
    expect(c.code).toBe(0);
    expect(c.out[0]).toMatch(/^192\.0\.2\.99 is in the penalty box until \d{4}-/);
    const refused = await session();
    expect(refused.greeting?.code).toBe(450);
    expect(refused.greeting?.text).toBe("You were naughty. You cannot connect for 2 more days.");
    expect((await tool(dir, clock, "release", "192.0.2.99")).code).toBe(0);
    expect((await session()).greeting?.code).toBe(220);
  });

  test("list and search show what the plugin recorded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkarma-"));
    const clock = new FakeClock();
    // A naughty visit recorded by the plugin itself, and a captured address.
    const t = await TestSession.start({ clock, plugins: [`karma db_dir ${dir}`], remoteIp: "192.0.2.10" });
    t.connection.notes("karma", -3);
    await t.command("QUIT");
    await t.done;
    await tool(dir, clock, "penalise", "2001:db8::5");
    const list = await tool(dir, clock, "list");
    expect(list.out[0]).toBe("IP address                               penalty until     naughty  nice connects");
    expect(list.out.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["192.0.2.10", "2001:db8::5"]);
    expect(list.out[1]).toMatch(/^192\.0\.2\.10 +\d{4}-\d\d-\d\d \d\d:\d\d +1 +0 +1$/);
    expect((await tool(dir, clock, "search", "nice")).out).toHaveLength(1);
    expect((await tool(dir, clock, "search", "naughty")).out).toHaveLength(3);
    expect((await tool(dir, clock, "search", "2001:db8::5")).out[1]).toMatch(/^2001:db8::5 +\S+ \S+ +1 +0 +0$/);
    await clock.advance(2 * 86_400_000);
    expect((await tool(dir, clock, "list")).out[1]).toMatch(/^192\.0\.2\.10 +- +1 /); // the penalty is over
  });

  test("wrong arguments say what is wrong", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpkarma-"));
    const clock = new FakeClock();
    expect(await tool(dir, clock, "capture", "not-an-ip")).toEqual({
      code: 2,
      out: ['qpsmtpd karma capture: "not-an-ip" is not an IP address'],
    });
    expect((await tool(dir, clock, "search", "evil")).code).toBe(2);
    expect((await tool(dir, clock, "capture", "192.0.2.1", "soon")).out).toEqual(['qpsmtpd karma capture: "soon" is not a number of days']);
    const help = await tool(dir, clock);
    expect(help.code).toBe(0);
    expect(help.out[0]).toContain("qpsmtpd karma [--config DIR] [--db-dir DIR] COMMAND");
    expect((await tool(dir, clock, "explode")).code).toBe(2);
  });
});
