/** random_error: fails the given percentage of connections. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../src/testing/harness.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("random_error", () => {
  test("100 percent always fails, 0 never", async () => {
    const t = await TestSession.start({ plugins: ["random_error 100"] });
    expect([450, 421]).toContain(t.greeting!.code);
    const ok = await TestSession.start({ plugins: ["random_error 0"] });
    expect(ok.greeting!.code).toBe(220);
    expect((await ok.command("HELO c")).code).toBe(250);
  });
});

describe("random_error arguments", () => {
  test("a negative percentage never fails; a word that is not one stops the load, naming it", async () => {
    const t = await TestSession.start({ plugins: ["random_error -1"] });
    expect(t.greeting!.code).toBe(220);
    await expectUnknownArgument("random_error precent 5", "precent");
  });
});
