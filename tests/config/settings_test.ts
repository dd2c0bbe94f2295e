/** smtpd.yaml: the PROXY settings (proxy_ports, proxy_trusted, proxy_timeout) and the listeners they make; workers. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { cores, DEFAULT_SETTINGS, listenSpecs, readSettingsFile } from "../../src/config/settings.ts";

function yaml(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), "qpsettings-")), "smtpd.yaml");
  writeFileSync(f, text);
  return f;
}

describe("PROXY listeners in smtpd.yaml", () => {
  test("proxy_ports listen on every address next to ports, marked with the trusted list and time limit", () => {
    const f = yaml(
      "listen: [127.0.0.1, '[::1]']\nport: 25\nproxy_ports: [2526]\nproxy_trusted: [10.0.0.0/8, '::1', 192.0.2.7]\nproxy_timeout: 3\n",
    );
    const s = { ...DEFAULT_SETTINGS, ...readSettingsFile(f) };
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

  test("the time limit defaults to 10 s; `proxy_port` is the singular spelling", () => {
    const s = { ...DEFAULT_SETTINGS, ...readSettingsFile(yaml("listen: 0.0.0.0\nproxy_port: 2526\nproxy_trusted: 127.0.0.1\n")) };
    expect(listenSpecs(s)).toEqual([
      { host: "0.0.0.0", port: 2525, tls: false },
      { host: "0.0.0.0", port: 2526, tls: false, proxy: { trusted: ["127.0.0.1"], timeoutMs: 10_000 } },
    ]);
  });

  test("a port in proxy_ports is a PROXY listener however it is named, and only once", () => {
    const s = {
      ...DEFAULT_SETTINGS,
      ...readSettingsFile(
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

  test("without PROXY settings the listeners are as before", () => {
    const s = { ...DEFAULT_SETTINGS, ...readSettingsFile(yaml("listen: 127.0.0.1\nport: 25\ntls_port: 465\nproxy_trusted: 127.0.0.1\n")) };
    expect(listenSpecs(s)).toEqual([
      { host: "127.0.0.1", port: 25, tls: false },
      { host: "127.0.0.1", port: 465, tls: true },
    ]);
  });

  test("a PROXY listener without proxy_trusted is an error naming the file and the line", () => {
    const f = yaml("port: 25\n# behind haproxy\nproxy_ports: [2526]\n");
    expect(() => readSettingsFile(f)).toThrow(ConfigError);
    expect(() => readSettingsFile(f)).toThrow(`${f}:3: proxy_ports needs proxy_trusted`);
    const empty = yaml("proxy_port: 2526\nproxy_trusted: []\n");
    expect(() => readSettingsFile(empty)).toThrow(`${empty}:1: proxy_port needs proxy_trusted`);
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
  ])("a bad value is an error naming its line: %s", (_name, line) => {
    const f = yaml(`port: 25\n${line}\n`);
    expect(() => readSettingsFile(f)).toThrow(`${f}:2: bad value for ${line.split(":")[0]}`);
  });

  test("an unknown key is still an error", () => {
    const f = yaml("proxy_ports: [2526]\nproxy_trusted: 127.0.0.1\nproxy_trust: 10.0.0.1\n");
    expect(() => readSettingsFile(f)).toThrow(`${f}:3: unknown setting "proxy_trust"`);
  });

  test("a port cannot be both implicit TLS and PROXY", () => {
    const f = yaml("tls_ports: [465]\nproxy_ports: [465]\nproxy_trusted: 127.0.0.1\n");
    expect(() => readSettingsFile(f)).toThrow(`${f}:2: port 465 is in tls_ports and proxy_ports`);
    // Settings built in code get the same refusals from listenSpecs.
    expect(() => listenSpecs({ ...DEFAULT_SETTINGS, proxyPorts: [2526] })).toThrow("proxy_ports needs proxy_trusted");
    expect(() => listenSpecs({ ...DEFAULT_SETTINGS, tlsPorts: [465], proxyPorts: [465], proxyTrusted: ["::1"] })).toThrow("port 465");
  });
});

describe("workers in smtpd.yaml", () => {
  test("defaults to the number of cores; `workers: N` sets it", () => {
    expect(DEFAULT_SETTINGS.workers).toBe(cores());
    expect(cores()).toBeGreaterThanOrEqual(1);
    expect(readSettingsFile(yaml("workers: 1\n")).workers).toBe(1);
    expect(readSettingsFile(yaml("port: 25\nworkers: 8\n")).workers).toBe(8);
  });

  test("0, a fraction, a word or more than 256 is an error naming the file and the line", () => {
    for (const v of ["0", "1.5", "all", "-2", "257"]) {
      const f = yaml(`port: 25\nworkers: ${v}\n`);
      expect(() => readSettingsFile(f)).toThrow(`${f}:2: bad value for workers`);
    }
  });
});

describe("metrics_listen and control_socket in smtpd.yaml", () => {
  test("read as given; a metrics address without a port, or a control socket that is not a string, names its line", () => {
    expect(readSettingsFile(yaml('metrics_listen: "127.0.0.1:9125"\ncontrol_socket: /run/q/c.sock\n'))).toEqual({
      metricsListen: "127.0.0.1:9125",
      controlSocket: "/run/q/c.sock",
    });
    expect(readSettingsFile(yaml('metrics_listen: "[::1]:9125"\n')).metricsListen).toBe("[::1]:9125");
    for (const bad of ['metrics_listen: "127.0.0.1"', "metrics_listen: 9125", "control_socket: 5"]) {
      const f = yaml(`port: 25\n${bad}\n`);
      expect(() => readSettingsFile(f)).toThrow(`${f}:2: bad value for ${bad.split(":")[0]}`);
    }
  });
});
