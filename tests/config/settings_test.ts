/** smtpd.yaml: the PROXY settings (proxy_ports, proxy_trusted, proxy_timeout) and the listeners they make; workers. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { cores, DEFAULT_SETTINGS, listenSpecs, readSettingsFile } from "../../src/config/settings.ts";
import { nativeYamlParse } from "../../src/runtime/runtime.ts";

function yaml(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), "qpsettings-")), "smtpd.yaml");
  writeFileSync(f, text);
  return f;
}

describe("PROXY listeners in smtpd.yaml", () => {
  test("proxy_ports listen on every address next to ports, marked with the trusted list and time limit", async () => {
    const f = yaml(
      "listen: [127.0.0.1, '[::1]']\nport: 25\nproxy_ports: [2526]\nproxy_trusted: [10.0.0.0/8, '::1', 192.0.2.7]\nproxy_timeout: 3\n",
    );
    const s = { ...DEFAULT_SETTINGS, ...await readSettingsFile(f) };
    expect(s.proxyPorts).toEqual([2526]);
    expect(s.proxyTrusted).toEqual(["10.0.0.0/8", "::1", "192.0.2.7"]);
    const proxy = { trusted: ["10.0.0.0/8", "::1", "192.0.2.7"], timeoutMs: 3000 };
    expect(listenSpecs(s)).toEqual([
      { host: "127.0.0.1", port: 25, tls: false },
      { host: "127.0.0.1", port: 2526, tls: false, proxy },
      { host: "::1", port: 25, tls: false },
      { host: "::1", port: 2526, tls: false, proxy },
    ]);
  });

  test("the time limit defaults to 10 s; `proxy_port` is the singular spelling", async () => {
    const s = { ...DEFAULT_SETTINGS, ...await readSettingsFile(yaml("listen: 0.0.0.0\nproxy_port: 2526\nproxy_trusted: 127.0.0.1\n")) };
    expect(listenSpecs(s)).toEqual([
      { host: "0.0.0.0", port: 2525, tls: false },
      { host: "0.0.0.0", port: 2526, tls: false, proxy: { trusted: ["127.0.0.1"], timeoutMs: 10_000 } },
    ]);
  });

  test("a port in proxy_ports is a PROXY listener however it is named, and only once", async () => {
    const s = {
      ...DEFAULT_SETTINGS,
      ...await readSettingsFile(
        yaml("listen: [127.0.0.1, '192.0.2.1:2526', '[::1]:25']\nports: [25, 2526]\nproxy_ports: 2526\nproxy_trusted: 127.0.0.1\n"),
      ),
    };
    const proxy = { trusted: ["127.0.0.1"], timeoutMs: 10_000 };
    expect(listenSpecs(s)).toEqual([
      { host: "127.0.0.1", port: 25, tls: false },
      { host: "127.0.0.1", port: 2526, tls: false, proxy },
      { host: "192.0.2.1", port: 2526, tls: false, proxy },
      { host: "::1", port: 25, tls: false },
    ]);
  });

  test("without PROXY settings the listeners are as before", async () => {
    const s = {
      ...DEFAULT_SETTINGS,
      ...await readSettingsFile(yaml("listen: 127.0.0.1\nport: 25\ntls_port: 465\nproxy_trusted: 127.0.0.1\n")),
    };
    expect(listenSpecs(s)).toEqual([
      { host: "127.0.0.1", port: 25, tls: false },
      { host: "127.0.0.1", port: 465, tls: true },
    ]);
  });

  test("a PROXY listener without proxy_trusted is an error naming the file and the line", async () => {
    const f = yaml("port: 25\n# behind haproxy\nproxy_ports: [2526]\n");
    await expect(readSettingsFile(f)).rejects.toThrow(ConfigError);
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:3: proxy_ports needs proxy_trusted`);
    const empty = yaml("proxy_port: 2526\nproxy_trusted: []\n");
    await expect(readSettingsFile(empty)).rejects.toThrow(`${empty}:1: proxy_port needs proxy_trusted`);
  });

  test.each([
    ["a host name", "proxy_trusted: [haproxy.example.org]"],
    ["an IPv4 prefix over 32", "proxy_trusted: [10.0.0.0/33]"],
    ["an IPv6 prefix over 128", "proxy_trusted: ['2001:db8::/129']"],
    ["two prefixes", "proxy_trusted: [10.0.0.0/8/9]"],
    ["an empty prefix", "proxy_trusted: [10.0.0.0/]"],
    ["a zone index", "proxy_trusted: ['fe80::1%eth0']"],
    ["a textual prefix", "proxy_trusted: ['192.168.']"],
    ["a number", "proxy_trusted: [127]"],
    ["a zero time limit", "proxy_timeout: 0"],
    ["a time limit in words", "proxy_timeout: ten"],
    ["a proxy port out of range", "proxy_ports: [70000]"],
  ])("a bad value is an error naming its line: %s", async (_name, line) => {
    const f = yaml(`port: 25\n${line}\n`);
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: bad value for ${line.split(":")[0]}`);
  });

  test("an unknown key is still an error", async () => {
    const f = yaml("proxy_ports: [2526]\nproxy_trusted: 127.0.0.1\nproxy_trust: 10.0.0.1\n");
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:3: unknown setting "proxy_trust"`);
  });

  test("a port cannot be both implicit TLS and PROXY", async () => {
    const f = yaml("tls_ports: [465]\nproxy_ports: [465]\nproxy_trusted: 127.0.0.1\n");
    await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: port 465 is in tls_ports and proxy_ports`);
    // Settings built in code get the same refusals from listenSpecs.
    expect(() => listenSpecs({ ...DEFAULT_SETTINGS, proxyPorts: [2526] })).toThrow("proxy_ports needs proxy_trusted");
    expect(() => listenSpecs({ ...DEFAULT_SETTINGS, tlsPorts: [465], proxyPorts: [465], proxyTrusted: ["::1"] })).toThrow("port 465");
  });
});

describe("workers in smtpd.yaml", () => {
  test("defaults to the number of cores; `workers: N` sets it", async () => {
    expect(DEFAULT_SETTINGS.workers).toBe(cores());
    expect(cores()).toBeGreaterThanOrEqual(1);
    expect((await readSettingsFile(yaml("workers: 1\n"))).workers).toBe(1);
    expect((await readSettingsFile(yaml("port: 25\nworkers: 8\n"))).workers).toBe(8);
  });

  test("0, a fraction, a word or more than 256 is an error naming the file and the line", async () => {
    for (const v of ["0", "1.5", "all", "-2", "257"]) {
      const f = yaml(`port: 25\nworkers: ${v}\n`);
      await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: bad value for workers`);
    }
  });
});

describe("metrics_listen and control_socket in smtpd.yaml", () => {
  test("read as given; a metrics address without a port, or a control socket that is not a string, names its line", async () => {
    expect(await readSettingsFile(yaml('metrics_listen: "127.0.0.1:9125"\ncontrol_socket: /run/q/c.sock\n'))).toEqual({
      metricsListen: "127.0.0.1:9125",
      controlSocket: "/run/q/c.sock",
    });
    expect((await readSettingsFile(yaml('metrics_listen: "[::1]:9125"\n'))).metricsListen).toBe("[::1]:9125");
    for (const bad of ['metrics_listen: "127.0.0.1"', "metrics_listen: 9125", "control_socket: 5"]) {
      const f = yaml(`port: 25\n${bad}\n`);
      await expect(readSettingsFile(f)).rejects.toThrow(`${f}:2: bad value for ${bad.split(":")[0]}`);
    }
  });
});

describe("reading smtpd.yaml with Bun's own YAML parser (as the daemon does), the yaml package behind it", () => {
  test("Bun has one", () => {
    expect(nativeYamlParse).toBeDefined();
  });

  test("the shipped file reads as the yaml package reads it", async () => {
    const shipped = join(import.meta.dirname, "..", "..", "config", "smtpd.yaml");
    expect(await readSettingsFile(shipped, nativeYamlParse)).toEqual(await readSettingsFile(shipped));
    const { parse } = await import("yaml");
    const doc = parse(readFileSync(shipped, "utf8")) as Record<string, unknown>;
    const s = await readSettingsFile(shipped, nativeYamlParse);
    expect(s.listen).toEqual([doc["listen"] as string]);
    expect(s.ports).toEqual([doc["port"] as number]);
    expect(s.limitConnections).toBe(doc["limit_connections"] as number);
  });

  test("broken YAML is an error naming the file and the line, with the yaml package's words", async () => {
    const f = yaml("port: 25\nlisten: [127.0.0.1\n");
    await expect(readSettingsFile(f, nativeYamlParse)).rejects.toThrow(new RegExp(`^${f}:3: not valid YAML: Flow sequence`));
    const tab = yaml("port: 25\n\tworkers: 2\n");
    await expect(readSettingsFile(tab, nativeYamlParse)).rejects.toThrow(`${tab}:2: not valid YAML: Tabs are not allowed as indentation`);
  });

  test("a setting named twice is an error (Bun's own parser would take the last)", async () => {
    const f = yaml("port: 25\nworkers: 2\nport: 2525\n");
    await expect(readSettingsFile(f, nativeYamlParse)).rejects.toThrow(`${f}:3: not valid YAML: Map keys must be unique`);
  });
});
