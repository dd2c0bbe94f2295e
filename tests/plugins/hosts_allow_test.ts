/** hosts_allow, through a real listener (it runs before any SMTP). */
import { describe, expect, test } from "bun:test";
import { RawClient } from "../e2e/helpers.ts";
import { startServer } from "../helpers/server.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("hosts_allow", () => {
  test("the first matching line decides before any SMTP", async () => {
    for (
      const [rule, code, text] of [
        ["127.0.0.0/8 DENY You are not welcome", 550, "You are not welcome"],
        ["127.0.0.1/32 DENYSOFT", 451, "Sorry, try again later"],
        ["10.0.0.0/8 DENY not you", 220, undefined],
        ["::/0 DENY v6 only", 220, undefined],
      ] as const
    ) {
      const s = await startServer({ plugins: ["hosts_allow"], config: { hosts_allow: rule } });
      try {
        const c = await RawClient.connect(s.port);
        const r = await c.reply();
        expect(r.code).toBe(code);
        if (text) expect(r.text).toBe(text);
        c.close();
      } finally {
        await s.stop();
      }
    }
  });
});

describe("hosts_allow arguments", () => {
  test("it takes none (the limit is -m, the rules a config file): a word stops the load, naming it", async () => {
    await expectUnknownArgument("hosts_allow max_conn_ip 2", "max_conn_ip");
  });
});
