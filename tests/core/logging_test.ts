/** Logging plugins: every log line reaches them, with the connection's id; the chain stops at an answer other than DECLINED. */
import { describe, expect, test } from "bun:test";
import { DECLINED, type Hooks, LOGDEBUG, LOGINFO, LOGWARN, OK } from "qpsmtpd";
import { connectLogging } from "../../src/core/logging.ts";
import { testRegistry } from "../../src/testing/registry.ts";
import { TestSession } from "../../src/testing/harness.ts";

describe("logging hooks", () => {
  test("run in order until one answers; each sees the connection id", async () => {
    const seen: string[] = [];
    const make = (name: string, answer: typeof OK | typeof DECLINED): Hooks["logging"] =>
      function (_t, _l, _h, _p, message, connection) {
        if (message === "probe") seen.push(`${name} ${connection}`);
        return answer;
      };
    const t = await TestSession.start({
      modules: {
        first: { hook_logging: make("first", DECLINED) },
        second: { hook_logging: make("second", OK) },
        third: { hook_logging: make("third", DECLINED) },
      },
      config: { logging: ["first", "second", "third"] },
    });
    t.qp.log(LOGINFO, "probe");
    expect(seen).toEqual(["first test", "second test"]);
  });

  test("a logging plugin that throws does not stop mail or the other loggers", async () => {
    const seen: string[] = [];
    const t = await TestSession.start({
      modules: {
        broken: {
          hook_logging: () => {
            throw new Error("disk full");
          },
        },
        fine: { hook_logging: (_t, _l, _h, _p, message) => void seen.push(message) },
      },
      config: { logging: ["broken", "fine"] },
    });
    t.qp.log(LOGINFO, "still logged");
    expect(seen).toContain("still logged");
    expect((await t.command("HELO c")).code).toBe(250);
  });

  test("logs_up_to: a plugin is asked only about the lines it keeps; the others still get every line", async () => {
    const seen: string[] = [];
    const keep = (name: string): Hooks["logging"] => (_t, level, _h, _p, message) => void seen.push(`${name} ${level} ${message}`);
    const t = await TestSession.start({
      modules: {
        terse: {
          register: function () {
            this.logs_up_to(LOGWARN);
          },
          hook_logging: keep("terse"),
        },
        all: { hook_logging: keep("all") },
      },
      config: { logging: ["terse", "all"] },
    });
    t.qp.log(LOGWARN, "warn");
    t.qp.log(LOGDEBUG, "debug");
    expect(seen).toEqual([`terse ${LOGWARN} warn`, `all ${LOGWARN} warn`, `all ${LOGDEBUG} debug`]);
  });

  test("a line that no logging plugin keeps is not made", async () => {
    const registry = await testRegistry({
      modules: {
        info: {
          register: function () {
            this.logs_up_to(LOGINFO);
          },
          hook_logging: () => DECLINED,
        },
      },
      config: { logging: ["info"] },
    });
    connectLogging(registry);
    const logger = registry.host.logger;
    expect(logger.wants(LOGINFO)).toBe(true);
    expect(logger.wants(LOGDEBUG)).toBe(false);
    let asked = 0;
    const sink = logger.sink!;
    logger.sink = (...a) => (asked++, sink(...a));
    logger.log(LOGDEBUG, "not made");
    logger.log(LOGINFO, "made");
    expect(asked).toBe(1);
  });
});
