/** Logging plugins: every log line reaches them, with the connection's id; the chain stops at an answer other than DECLINED. */
import { describe, expect, test } from "bun:test";
import { DECLINED, type Hooks, LOGINFO, OK } from "qpsmtpd";
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
});
