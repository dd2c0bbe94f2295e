/**
 * What a plugin can reach: the public API, and nothing of the engine behind it.
 */
import { describe, expect, test } from "bun:test";
import { DECLINED, DONE, OK } from "qpsmtpd";
import type { Hooks } from "qpsmtpd";
import { TestSession } from "../../src/testing/harness.ts";

describe("a hook's `this`", () => {
  test("has no own state and reaches no engine internals at run time", async () => {
    const seen: Record<string, unknown> = {};
    const probe: Hooks["rcpt"] = function (txn) {
      const qp = this.qp as unknown as Record<string, unknown>;
      seen["ownKeys"] = Object.keys(this);
      seen["qpKeys"] = Object.keys(this.qp);
      seen["internals"] = ["input", "transport", "waitInput", "send", "registry", "host", "limits", "feed", "runHooks"].filter((k) =>
        qp[k] !== undefined
      );
      seen["txnInternals"] = ["body_write", "set_body_start", "destroy", "add_temp_file"].filter((k) =>
        (txn as unknown as Record<string, unknown>)[k] !== undefined
      );
      seen["serverInternals"] = ["configDir", "logger", "clock", "tlsContext"].filter((k) =>
        (this.server as unknown as Record<string, unknown>)[k] !== undefined
      );
      seen["sameQp"] = this.qp === seen["firstQp"];
      try {
        (this.connection as unknown as { hello: string }).hello = "ehlo";
        seen["helloSet"] = true;
      } catch (e) {
        seen["helloSet"] = (e as Error).name;
      }
      return OK;
    };
    const t = await TestSession.start({
      modules: {
        probe: {
          hook_rcpt: probe,
          hook_mail() {
            seen["firstQp"] = this.qp;
            return DECLINED;
          },
        },
      },
      plugins: ["probe"],
    });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<b@example.org>")).code).toBe(250);
    expect(seen["ownKeys"]).toEqual([]);
    expect(seen["qpKeys"]).toEqual([]);
    expect(seen["internals"]).toEqual([]);
    expect(seen["txnInternals"]).toEqual([]);
    expect(seen["serverInternals"]).toEqual([]);
    expect(seen["sameQp"]).toBe(true);
    expect(seen["helloSet"]).toBe("TypeError");
    expect(t.connection.hello).toBe("helo");
  });

  test("hooks outside a session have no qp, connection or transaction", async () => {
    const seen: unknown[] = [];
    const pre: Hooks["pre-connection"] = function () {
      const self = this as unknown as Record<string, unknown>;
      seen.push(self["qp"], self["connection"], self["transaction"], typeof this.server.config, this.hook_name());
      return DECLINED;
    };
    const t = await TestSession.start({ modules: { probe: { hook_pre_connection: pre } }, plugins: ["probe"] });
    expect(t.greeting?.code).toBe(220);
    expect(seen).toEqual([undefined, undefined, undefined, "function", "pre-connection"]);
  });

  test("each call gets its own context: the hook name and signal are per call", async () => {
    const names: Array<string | undefined> = [];
    const signals = new Set<AbortSignal>();
    const record = function (this: { hook_name(): string | undefined; signal: AbortSignal }) {
      names.push(this.hook_name());
      signals.add(this.signal);
      return DECLINED;
    };
    const t = await TestSession.start({ modules: { probe: { hook_helo: record, hook_mail: record } }, plugins: ["probe"] });
    await t.command("HELO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect(names).toEqual(["helo", "mail"]);
    expect(signals.size).toBe(2);
  });
});

describe("qp.respond_status", () => {
  test("puts the status code in front of each line after EHLO, and leaves it out after HELO", async () => {
    const start = async () => {
      const t = await TestSession.start({ plugins: ["rcpt_ok"] });
      t.mockHook("mail", function () {
        this.qp.respond_status(451, "4.3.0", "Unable to scan now", "try again later");
        return DONE;
      });
      return t;
    };
    const ehlo = await start();
    await ehlo.command("EHLO c");
    expect((await ehlo.command("MAIL FROM:<a@example.net>")).lines).toEqual(["4.3.0 Unable to scan now", "4.3.0 try again later"]);
    const helo = await start();
    await helo.command("HELO c");
    expect((await helo.command("MAIL FROM:<a@example.net>")).lines).toEqual(["Unable to scan now", "try again later"]);
  });
});
