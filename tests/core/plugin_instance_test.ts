/** A loaded plugin's name, arguments, time limit and log level. */
import { describe, expect, test } from "bun:test";
import { ConfigDir } from "../../src/config/files.ts";
import { escapePluginName, PluginInstance } from "../../src/core/plugin_instance.ts";
import { Registry } from "../../src/core/registry.ts";
import { testHost } from "../../src/testing/registry.ts";

function instance(name: string, args: string[]): PluginInstance {
  const host = testHost(new ConfigDir({ dirs: [] }));
  return new PluginInstance({ name, args, module: {}, host, server: new Registry(host).server, timeoutMs: 30_000 });
}

describe("PluginInstance", () => {
  test("plugin_name escapes like qpsmtpd", () => {
    expect(escapePluginName("queue/qmail-queue")).toBe("queue::qmail_2dqueue");
    expect(escapePluginName("ident/p0f")).toBe("ident::p0f");
    expect(escapePluginName("virus/3d")).toBe("virus::_33d");
    expect(instance("relay:0", []).escapedName).toBe("relay_3a0");
    expect(instance("relay:0", []).file).toBe("relay");
  });

  test("`timeout N` and `loglevel L` count wherever they stand, after positional arguments too", () => {
    const p = instance("queue/smtp-forward", ["192.0.2.1", "2525", "timeout", "5", "loglevel", "-1"]);
    expect(p.timeoutMs).toBe(5_000);
    expect(p.level(6)).toBe(5);
    expect(p.options).toEqual({ "192.0.2.1": "2525", timeout: "5", loglevel: "-1" });
    const q = instance("queue/maildir", ["/var/mail", "timeout", "2.5", "loglevel", "2"]);
    expect(q.timeoutMs).toBe(2_500);
    expect(q.level(7)).toBe(2);
    expect(instance("x", ["timeout", "soon"]).timeoutMs).toBe(30_000); // not a number: the default
    expect(instance("x", ["loglevel", "+2"]).level(6)).toBe(7); // clamped to LOGDEBUG
  });
});
