/**
 * earlytalker: clients that talk before the greeting (or before 354 with check-at DATA).
 * The wait is input_pending on the session's clock, so these tests move a FakeClock instead of
 * waiting for real time to pass.
 */
import { describe, expect, test } from "bun:test";
import { OK } from "qpsmtpd";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

/** Lets the session reach its wait: resolves once a timer is pending on `clock`. */
async function waiting(clock: FakeClock): Promise<void> {
  for (let i = 0; i < 1000 && clock.pending === 0; i++) await new Promise<void>((r) => setImmediate(r));
  expect(clock.pending).toBeGreaterThan(0);
}

describe("earlytalker", () => {
  test("a quiet client is greeted after the wait", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["earlytalker wait 0.2"], waitForGreeting: false });
    await waiting(clock);
    await clock.advance(199);
    expect(t.greeting).toBeUndefined();
    await clock.advance(1);
    expect(t.greeting?.code).toBe(220);
    expect(t.connection.notes("earlytalker")).toBeUndefined();
  });
  test("a client that talks first is refused", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["earlytalker wait 1"], waitForGreeting: false });
    // The session is holding its greeting; send before it arrives.
    expect(t.greeting).toBeUndefined();
    const r = await t.send("EHLO eager\r\n");
    expect(r[0]!.code).toBe(550);
    expect(r[0]!.text).toBe("Connecting host started transmitting before SMTP greeting");
    expect(t.connection.notes("earlytalker")).toBe(1);
  });
  test("defer-reject greets, then refuses MAIL", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["earlytalker wait 1 defer-reject 1"], waitForGreeting: false });
    const r = await t.send("EHLO eager\r\n");
    expect(r.map((x) => x.code)).toEqual([220, 250]);
    expect((await t.command("MAIL FROM:<a@example.net>")).code).toBe(550);
  });
  test("check-at DATA refuses a client that sends its message before 354", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["earlytalker wait 0.3 check-at DATA"] });
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    const r = await t.send("DATA\r\nSubject: too early\r\n");
    expect(r[0]!.code).toBe(554);
  });
  test("wait does not hold other connections", async () => {
    const clock = new FakeClock();
    let greeted = false;
    const slow = TestSession.start({ clock, plugins: ["earlytalker wait 1"] }).then((s) => ((greeted = true), s));
    const started = Date.now();
    const fast = await TestSession.start();
    expect((await fast.command("NOOP")).code).toBe(250);
    expect(Date.now() - started).toBeLessThan(500);
    await waiting(clock);
    expect(greeted).toBe(false);
    await clock.advance(1000);
    expect((await slow).greeting?.code).toBe(220);
  });
});

describe("earlytalker reject arguments", () => {
  test("earlytalker reject 0 lets a talker in; reject_type temp defers it", async () => {
    const clock = new FakeClock();
    const a = await TestSession.start({ clock, plugins: ["earlytalker wait 1 reject 0"], waitForGreeting: false });
    expect((await a.send("EHLO eager\r\n")).map((r) => r.code)).toEqual([220, 250]);
    const b = await TestSession.start({ clock, plugins: ["earlytalker wait 1 reject_type temp"], waitForGreeting: false });
    expect((await b.send("EHLO eager\r\n"))[0]!.code).toBe(450);
  });
});

describe("earlytalker: unknown arguments", () => {
  test("check-at may be given twice (either case); each stage is checked", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({ clock, plugins: ["earlytalker wait 0.3 check-at CONNECT check-at data"], waitForGreeting: false });
    await waiting(clock);
    await clock.advance(300);
    expect(t.greeting?.code).toBe(220);
    t.mockHook("rcpt", () => OK);
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    await t.command("RCPT TO:<b@example.org>");
    expect((await t.send("DATA\r\nSubject: too early\r\n"))[0]!.code).toBe(554);
  });
  test("a misspelt key, a stage that is not one, or check_earlytalker's action stops the load, naming it", async () => {
    await expectUnknownArgument("earlytalker wiat 1", "wiat");
    await expect(TestSession.start({ plugins: ["earlytalker check-at CONECT"] })).rejects.toThrow(
      '(override plugins):1: plugin earlytalker failed to load: earlytalker: check-at is CONNECT or DATA, not "CONECT"',
    );
    await expect(TestSession.start({ plugins: ["earlytalker action log"] })).rejects.toThrow(
      'earlytalker: "action" is check_earlytalker\'s: write reject 0 for log',
    );
    await expect(TestSession.start({ plugins: ["earlytalker wait soon"] })).rejects.toThrow('wait is a number of seconds, not "soon"');
  });
});
