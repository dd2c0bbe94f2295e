/**
 * The per-call time limit (`plugin_timeout`, `timeout N`), on a fake clock: a hook that never
 * settles is logged and counts as DECLINED, except in the queue stage, which answers 451.
 */
import { describe, expect, test } from "bun:test";
import { DECLINED, LOGERROR, OK } from "qpsmtpd";
import type { Hooks, PluginModule } from "qpsmtpd";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { TestSession } from "../../src/testing/harness.ts";

const never = (): Promise<never> => new Promise(() => undefined);

/** A plugin whose hooks never answer, that records whether its signal was aborted. */
function hanging(hooks: string[]): { module: PluginModule; aborted: string[] } {
  const aborted: string[] = [];
  const fn = function (this: { signal: AbortSignal; hook_name(): string | undefined }) {
    this.signal.addEventListener("abort", () => aborted.push(String(this.hook_name())));
    return never();
  };
  return { module: Object.fromEntries(hooks.map((h) => [`hook_${h}`, fn])) as PluginModule, aborted };
}

const accept: PluginModule = { hook_rcpt: () => OK, hook_queue: () => [OK, "Queued by the next plugin"] };

async function envelope(t: TestSession): Promise<void> {
  await t.command("HELO c");
  await t.command("MAIL FROM:<a@example.net>");
}

describe("the per-call time limit", () => {
  test("a rcpt hook that never answers counts as DECLINED after plugin_timeout; the next plugin decides", async () => {
    const clock = new FakeClock();
    const hang = hanging(["rcpt"]);
    const t = await TestSession.start({
      clock,
      modules: { hang: hang.module, accept },
      plugins: ["hang", "accept"],
      config: { plugin_timeout: "5" },
    });
    await envelope(t);
    const reply = t.command("RCPT TO:<b@example.org>");
    await clock.advance(4_900);
    expect(t.replies.at(-1)?.code).toBe(250); // still the MAIL reply: nothing answered yet
    await clock.advance(200);
    expect((await reply).code).toBe(250);
    expect(hang.aborted).toEqual(["rcpt"]);
    const line = t.logs.find((l) => l.level === LOGERROR && l.hook === "rcpt");
    expect(line?.plugin).toBe("hang");
    expect(line?.message).toBe("plugin hang did not answer hook rcpt within 5s; going on as if it declined");
  });

  test("a queue hook that never answers gets 451, even when a later queue plugin would accept", async () => {
    const clock = new FakeClock();
    const hang = hanging(["queue"]);
    const t = await TestSession.start({ clock, modules: { hang: hang.module, accept }, plugins: ["hang", "accept"] });
    await envelope(t);
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    const reply = t.data("Subject: x\n\nbody\n");
    await clock.advance(30_000); // the default limit
    const r = await reply;
    expect(r.code).toBe(451);
    expect(r.text).toBe("Queuing declined or disabled; try again later");
    expect(t.logs.some((l) => l.message.includes("did not answer hook queue within 30s; the message is refused for now"))).toBe(true);
  });

  test("a queue_pre hook that never answers gets 451 too", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({
      clock,
      modules: { hang: hanging(["queue_pre"]).module, accept },
      plugins: ["hang timeout 2", "accept"],
    });
    await envelope(t);
    await t.command("RCPT TO:<b@example.org>");
    await t.command("DATA");
    const reply = t.data("Subject: x\n\nbody\n");
    await clock.advance(2_000);
    expect((await reply).code).toBe(451);
  });

  test("`timeout N` on the plugin's line wins over plugin_timeout", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({
      clock,
      modules: { hang: hanging(["helo"]).module },
      plugins: ["hang timeout 1"],
      config: { plugin_timeout: "60" },
    });
    const reply = t.command("HELO c");
    await clock.advance(1_000);
    expect((await reply).code).toBe(250);
  });

  test("a call's signal reads as aborted after its time limit, even when first looked at late", async () => {
    const clock = new FakeClock();
    let ctx: { signal: AbortSignal } | undefined;
    const t = await TestSession.start({
      clock,
      modules: {
        late: {
          hook_helo() {
            ctx = this;
            return never();
          },
        },
      },
      plugins: ["late timeout 1"],
    });
    const reply = t.command("HELO c");
    await clock.advance(1_000);
    expect((await reply).code).toBe(250);
    expect(ctx?.signal.aborted).toBe(true);
    expect(String(ctx?.signal.reason)).toContain("did not answer hook helo within 1s");
  });

  test("plugin_timeout 0 means no limit", async () => {
    const clock = new FakeClock();
    const t = await TestSession.start({
      clock,
      modules: { hang: hanging(["helo"]).module },
      plugins: ["hang"],
      config: { plugin_timeout: "0" },
    });
    void t.command("HELO c");
    await clock.advance(3_600_000);
    expect(t.replies.length).toBe(1); // only the greeting
  });

  test("a hook that answers in time is not cut short, and its timer is gone", async () => {
    const clock = new FakeClock();
    const slow: Hooks["helo"] = () => new Promise((r) => clock.after(4_000, () => r(DECLINED)));
    const t = await TestSession.start({
      clock,
      modules: { slow: { hook_helo: slow } },
      plugins: ["slow"],
      config: { plugin_timeout: "5" },
    });
    const reply = t.command("HELO c");
    await clock.advance(4_000);
    expect((await reply).code).toBe(250);
    expect(t.logs.some((l) => l.level === LOGERROR)).toBe(false);
  });

  test("an init that never finishes stops the load with an error naming the plugin", async () => {
    const clock = new FakeClock();
    const start = TestSession.start({ clock, modules: { stuck: { init: never } }, plugins: ["stuck"] }).then(
      () => "loaded",
      (e: Error) => e.message,
    );
    await clock.advance(30_000);
    expect(await start).toBe("(override plugins):1: plugin stuck failed to load: init did not finish within 30s");
  });
});

describe("a client that leaves", () => {
  test("ends its session at once, whatever a plugin is waiting for; the plugin's signal says why", async () => {
    const clock = new FakeClock();
    let signal: AbortSignal | undefined;
    const t = await TestSession.start({
      clock,
      modules: {
        hang: {
          hook_rcpt() {
            signal = this.signal;
            return never();
          },
        },
        tail: { hook_disconnect: () => DECLINED },
      },
      plugins: ["hang", "tail"],
      config: { plugin_timeout: "0" }, // no time limit: only the client's leaving can end the wait
    });
    await envelope(t);
    void t.command("RCPT TO:<b@example.org>");
    await clock.advance(1);
    expect(t.closed).toBe(false);
    await t.end(); // resolves only when the session has finished
    expect(t.closed).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(String(signal?.reason)).toContain("the client has gone");
    expect(t.logs.some((l) => l.message === "the client left while plugin hang was in hook rcpt; not waiting for it")).toBe(true);
  });
});

describe("a plugin that computes on the event loop", () => {
  test("is logged with its name and hook when it holds the loop past 200 ms", async () => {
    const busy: Hooks["helo"] = function () {
      const until = performance.now() + 250;
      while (performance.now() < until) { /* computing */ }
      return DECLINED;
    };
    const t = await TestSession.start({ modules: { busy: { hook_helo: busy } }, plugins: ["busy"] });
    await t.command("HELO c");
    const line = t.logs.find((l) => l.message.startsWith("plugin busy held the event loop for"));
    expect(line).toMatchObject({ level: 4, hook: "helo", plugin: "busy" });
  });
});
