/**
 * Every built-in refuses words it does not know, so a typo in config/plugins stops start-up with the
 * line instead of being ignored or taken for a path. Each plugin's own test checks its message; this
 * one keeps a new built-in from forgetting.
 */
import { describe, expect, test } from "bun:test";
import { BUILTINS } from "../../plugins/mod.ts";
import { TestSession } from "../../src/testing/harness.ts";

describe("plugin arguments", () => {
  test("every built-in refuses five words it does not know, naming one of them", async () => {
    const accepted: string[] = [];
    for (const name of Object.keys(BUILTINS)) {
      // Five words: more than any plugin takes as positional arguments (a path, a socket, a count).
      const line = `${name} /tmp/qp_unknown_1 qp_unknown_2 qp_unknown_3 qp_unknown_4 qp_unknown_5`;
      const failure = await TestSession.start({ plugins: [line] }).then(() => undefined, (e: Error) => e.message);
      if (failure === undefined || !/qp_unknown_\d/.test(failure)) accepted.push(`${name}: ${failure ?? "loaded"}`);
    }
    expect(accepted).toEqual([]);
  }, 60_000);
});
