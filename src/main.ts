/**
 * The qpsmtpd command: `qpsmtpd [serve] [flags]`, `qpsmtpd check`, `qpsmtpd hooks`, and the
 * tools (`tls-cert`, `karma`, `new-plugin`, `types`, `test`). The only module with top-level
 * effects; the subcommands' own code is in src/cli/, imported when one runs: the executable is
 * built with --splitting (Makefile), so a daemon never loads it (nor "qpsmtpd/testing").
 * @module
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import * as api from "./api/mod.ts";
import { join } from "node:path";
import { configDirs, createHost, homeDir, loadPlugins } from "./app.ts";
import { LOGERROR, LOGINFO, LOGNOTICE } from "./api/codes.ts";
import type { ServerHost } from "./core/server_host.ts";
import { type DaemonSettings, DEFAULT_SETTINGS, listenSpecs, MAX_WORKERS, readSettingsFile } from "./config/settings.ts";
import { installPluginModules, nativeYamlParse } from "./runtime/runtime.ts";
import { SmtpServer } from "./server/server.ts";
import { formatStatus, startObservers, type StatusReport, viewOf } from "./server/observe.ts";
import { PLUGIN_DEPENDENCIES } from "./plugin/dependencies.ts";
import { BUILTINS } from "../plugins/mod.ts";
import { dropPrivileges } from "./server/privileges.ts";
import { Registry } from "./core/registry.ts";
import { catchStrayErrors, firstGeneration, Reloader } from "./server/daemon.ts";
import { WORKER_ENV, type WorkerConfig } from "./server/messages.ts";
import { VERSION } from "./api/version.ts";

const HELP = `qpsmtpd ${VERSION}: the qpsmtpd SMTP daemon, in one executable

Usage:
  qpsmtpd [serve] [options]   receive mail
  qpsmtpd check [--config DIR] the migration report: each plugins line and what it resolved to,
                               unknown and missing config files; exit 1 on what would stop the daemon
  qpsmtpd hooks [--config DIR] print each hook's plugin chain, in order
  qpsmtpd tls-cert [--config DIR] [--CN NAME] [--days N] [--force]
                               a self-signed certificate and key in DIR/ssl/, where tls looks
  qpsmtpd karma [--config DIR] list|search|capture|release ...   the karma store (karma_tool)
  qpsmtpd status [--config DIR] [--socket PATH] [--json]
                               the running daemon: listeners, connections, messages, plugins' errors
  qpsmtpd dkim-keygen [--config DIR] DOMAIN [SELECTOR] [--ed25519] [--bits N] [--force]
                               a DKIM key in DIR/dkim/DOMAIN/ for the dkim plugin; prints the DNS record
  qpsmtpd new-plugin NAME [DIR] write NAME.ts and NAME_test.ts (a plugin and its test) into DIR
  qpsmtpd types [DIR]          write the "qpsmtpd" type declarations and a tsconfig.json into DIR
  qpsmtpd test FILE...         run plugin tests written with "qpsmtpd/testing"

Options (as qpsmtpd-forkserver; defaults may also come from smtpd.yaml in the config dir):
  -l, --listen-address ADDR[:PORT]  address to listen on (repeatable; [v6]:port form) [0.0.0.0]
  -p, --port N                      port (repeatable) [2525]
      --tls-port N                  implicit-TLS port, e.g. 465 (repeatable; needs the tls plugin)
  -c, --limit-connections N         connections at once [1000]
  -m, --max-from-ip N               connections at once from one address [20]
  -u, --user USER                   run as USER after binding (when started as root)
      --workers N                   processes serving connections, sharing the ports [cores: ${DEFAULT_SETTINGS.workers}];
                                    1 = one process, no cluster
      --pid-file PATH               write the pid here; refuse to start if it names a live process
      --config DIR                  config directory (else $QPSMTPD_CONFIG, ./config beside the program)
  -h, --help                        this text
  -v, --version                     the version

PROXY protocol (HAProxy send-proxy/-v2) has no flags: smtpd.yaml proxy_ports, proxy_trusted, proxy_timeout.

Signals: HUP reloads config and plugins for new connections; TERM and INT stop accepting, let open
transactions finish (shutdown_grace, 30 s), then answer 421. With workers, signal the primary (the
pid in --pid-file): it passes HUP and TERM on to every worker and replaces a worker that dies.
`;

function fail(message: string): never {
  process.stderr.write(`qpsmtpd: ${message}\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  // A worker of the cluster takes its configuration from the primary, never from its arguments
  // (in the compiled binary they are the binary's path twice, under Deno they are absent).
  const workerConfig = process.env[WORKER_ENV];
  if (workerConfig !== undefined && typeof process.send === "function") return worker(workerConfig);
  // These two have options of their own, so they come first on the line.
  if (argv[0] === "tls-cert") return tlsCert(argv.slice(1));
  if (argv[0] === "karma") return karma(argv.slice(1));
  if (argv[0] === "dkim-keygen") return dkimKeygenCommand(argv.slice(1));
  if (argv[0] === "status") return status(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "listen-address": { type: "string", short: "l", multiple: true },
      port: { type: "string", short: "p", multiple: true },
      "tls-port": { type: "string", multiple: true },
      "limit-connections": { type: "string", short: "c" },
      "max-from-ip": { type: "string", short: "m" },
      user: { type: "string", short: "u" },
      "pid-file": { type: "string" },
      workers: { type: "string" },
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    process.stdout.write(`qpsmtpd ${VERSION}\n`);
    return;
  }
  const command = positionals[0] ?? "serve";
  if (command === "new-plugin") {
    const name = positionals[1] ?? fail("new-plugin needs a NAME");
    try {
      for (const f of (await import("./cli/scaffold.ts")).scaffold(name, positionals[2] ?? ".")) process.stdout.write(`wrote ${f}\n`);
    } catch (e) {
      fail((e as Error).message);
    }
    return;
  }
  if (command === "types") {
    try {
      for (const f of (await import("./cli/types.ts")).writeTypes(positionals[1] ?? ".")) process.stdout.write(`wrote ${f}\n`);
    } catch (e) {
      fail((e as Error).message);
    }
    return;
  }
  installPluginModules({
    ...PLUGIN_DEPENDENCIES,
    qpsmtpd: api as unknown as Record<string, unknown>,
    "qpsmtpd/testing": () => import("./testing/mod.ts") as unknown as Promise<Record<string, unknown>>,
  });
  if (command === "test") {
    const files = positionals.slice(1);
    if (files.length === 0) fail("test needs at least one FILE");
    const failed = await (await import("./cli/test.ts")).testFiles(files, (line) => process.stdout.write(`${line}\n`));
    process.exit(failed > 0 ? 1 : 0);
  }
  const dirs = configDirs(values.config);
  const host = createHost(dirs);

  const settings: DaemonSettings = { ...DEFAULT_SETTINGS };
  const yamlPath = host.configDir.path("smtpd.yaml");
  const num = (flag: string, v: string): number => {
    if (!/^\d+$/.test(v)) fail(`--${flag} wants a number, not "${v}"`);
    return Number(v);
  };
  try {
    if (yamlPath) Object.assign(settings, await readSettingsFile(yamlPath, nativeYamlParse));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values["listen-address"]) settings.listen = values["listen-address"];
  if (values.port) settings.ports = values.port.map((p) => num("port", p));
  if (values["tls-port"]) settings.tlsPorts = values["tls-port"].map((p) => num("tls-port", p));
  if (values["limit-connections"]) settings.limitConnections = num("limit-connections", values["limit-connections"]);
  if (values["max-from-ip"]) settings.maxFromIp = num("max-from-ip", values["max-from-ip"]);
  if (values.user) settings.user = values.user;
  if (values["pid-file"]) settings.pidFile = values["pid-file"];
  if (values.workers) {
    settings.workers = num("workers", values.workers);
    if (settings.workers < 1 || settings.workers > MAX_WORKERS) fail(`--workers wants 1 to ${MAX_WORKERS}, not ${settings.workers}`);
  }

  switch (command) {
    case "check":
      return check(host, settings);
    case "hooks":
      return hooks(host);
    case "serve":
      return serve(host, settings);
    default:
      fail(`unknown command "${command}" (try --help)`);
  }
}

/** The migration report; exits 1 on what would stop the daemon. */
async function check(host: ServerHost, settings: DaemonSettings): Promise<void> {
  const report = await (await import("./plugin/check.ts")).checkConfig({
    host,
    builtins: BUILTINS,
    defaultPluginDirs: [join(homeDir(), "plugins")],
    tlsPorts: settings.tlsPorts.length,
  });
  const code = (await import("./cli/check.ts")).printCheck(
    report,
    host.configDir.dirs[0] ?? "",
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  );
  process.exit(code);
}

/** `qpsmtpd tls-cert`: qpsmtpd's tls_cert, with its option names. */
async function tlsCert(argv: string[]): Promise<void> {
  const text = { type: "string" } as const;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: text,
        CN: text,
        C: text,
        ST: text,
        L: text,
        O: text,
        OU: text,
        email: text,
        days: text,
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(
      "qpsmtpd tls-cert [--config DIR] [--CN NAME] [--C XY] [--ST S] [--L CITY] [--O ORG] [--OU UNIT] [--email ADDR] [--days N] [--force]\n" +
        "Writes DIR/ssl/qpsmtpd-server.crt and .key (self-signed; CN defaults to `me`).\n",
    );
    return;
  }
  const host = createHost(configDirs(values.config));
  const dir = host.configDir.dirs[0]!;
  const cn = values.CN ?? host.me;
  const days = values.days === undefined ? 730 : Number(values.days);
  if (!(days > 0)) fail(`--days wants a number of days, not "${values.days}"`);
  try {
    const written = (await import("./cli/tls_cert.ts")).writeTlsCert(dir, {
      subject: {
        CN: cn,
        C: values.C ?? "XY",
        ST: values.ST ?? "unknown",
        L: values.L ?? "unknown",
        O: values.O ?? "QPSMTPD",
        OU: values.OU ?? "Server",
        emailAddress: values.email ?? `postmaster@${cn}`,
      },
      days,
      force: values.force ?? false,
    });
    for (const f of written) process.stdout.write(`wrote ${f}\n`);
    process.stdout.write(`load it with the line "tls" in ${join(dir, "plugins")} (the certificate is for ${cn}, valid ${days} days)\n`);
  } catch (e) {
    fail((e as Error).message);
  }
}

/** `qpsmtpd status`: asks the running daemon over its control socket. */
async function status(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { config: { type: "string" }, socket: { type: "string" }, json: { type: "boolean" } } });
  } catch (e) {
    fail(`${(e as Error).message}\nusage: qpsmtpd status [--config DIR] [--socket PATH] [--json]`);
  }
  const host = createHost(configDirs(parsed.values.config));
  let configured: string | undefined;
  const yamlPath = host.configDir.path("smtpd.yaml");
  try {
    if (yamlPath) configured = (await readSettingsFile(yamlPath, nativeYamlParse)).controlSocket;
  } catch (e) {
    fail((e as Error).message);
  }
  const run = join(RUN_DIR, "control.sock");
  const path = parsed.values.socket ?? configured ?? (fs.existsSync(run) ? run : join(host.spoolDir(), "control.sock"));
  let answer: unknown;
  try {
    answer = await (await import("./control/control.ts")).askControl(path, "status");
  } catch (e) {
    fail(`${(e as Error).message} (is the daemon running? --socket or control_socket in smtpd.yaml names another socket)`);
  }
  if ((answer as { error?: string }).error) fail((answer as { error: string }).error);
  process.stdout.write(parsed.values.json ? `${JSON.stringify(answer, null, 2)}\n` : formatStatus(answer as StatusReport));
}

/** `qpsmtpd dkim-keygen`: qpsmtpd's dkim_key_gen.sh. */
async function dkimKeygenCommand(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: "string" }, ed25519: { type: "boolean" }, bits: { type: "string" }, force: { type: "boolean" } },
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const [domain, selector, extra] = parsed.positionals;
  if (!domain || extra !== undefined) fail("usage: qpsmtpd dkim-keygen [--config DIR] DOMAIN [SELECTOR] [--ed25519] [--bits N] [--force]");
  const bits = parsed.values.bits === undefined ? undefined : Number(parsed.values.bits);
  if (bits !== undefined && !Number.isInteger(bits)) fail(`--bits wants a number, not "${parsed.values.bits}"`);
  const host = createHost(configDirs(parsed.values.config));
  try {
    const key = (await import("./cli/dkim_keygen.ts")).dkimKeygen(host.configDir.dirs[0]!, domain, selector, {
      type: parsed.values.ed25519 ? "ed25519" : "rsa",
      ...(bits !== undefined ? { bits } : {}),
      force: parsed.values.force ?? false,
    });
    process.stdout.write(`wrote ${key.dir}/private, public, selector and dns\npublish this TXT record:\n${key.record}\n`);
  } catch (e) {
    fail((e as Error).message);
  }
}

/** `qpsmtpd karma`: qpsmtpd's karma_tool on the karma plugin's store. */
async function karma(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: "string" }, "db-dir": { type: "string" } } });
  } catch (e) {
    fail(`${(e as Error).message}\n${(await import("./cli/karma.ts")).KARMA_USAGE}`);
  }
  const host = createHost(configDirs(parsed.values.config));
  // The karma line's own db_dir and penalty_days, as the plugin would use them.
  const line = host.configDir.lines("plugins").map((l) => l.value.split(/\s+/)).find((w) => /^karma(:\d+)?$/.test(w[0]!));
  const option = (k: string): string | undefined => {
    const args = line?.slice(1) ?? [];
    for (let i = 0; i + 1 < args.length; i += 2) if (args[i] === k) return args[i + 1];
    return undefined;
  };
  const store = host.store(parsed.values["db-dir"] ?? option("db_dir"));
  const days = option("penalty_days");
  const code = await (await import("./cli/karma.ts")).karmaTool(parsed.positionals, {
    store,
    now: () => host.clock.now(),
    ...(days !== undefined ? { penaltyDays: Number(days) } : {}),
    out: (l) => process.stdout.write(`${l}\n`),
  });
  process.exit(code);
}

async function hooks(host: ServerHost): Promise<void> {
  let registry;
  try {
    registry = await loadPlugins(host);
  } catch (e) {
    fail((e as Error).message);
  }
  for (const [hook, chain] of registry.table()) {
    process.stdout.write(`${hook}: ${chain.map((e) => e.plugin.name).join(" -> ")}\n`);
  }
}

async function serve(host: ServerHost, settings: DaemonSettings): Promise<void> {
  if (settings.pidFile) claimPidFile(settings.pidFile);
  const starting = keepStopSignals();
  if (settings.workers > 1) return primary(host, settings, starting);
  // As qpsmtpd-forkserver (and as each worker of a cluster): the plugins load after the switch
  // to the user, so what they make at load (a database, a log file, the spool under the user's
  // uid) is the user's. The sockets are bound first, as root; a client that comes meanwhile
  // waits for open(), and is served by the loaded plugins.
  const server = new SmtpServer(new Registry(host), {
    listen: listenSpecs(settings),
    limitConnections: settings.limitConnections,
    maxFromIp: settings.maxFromIp,
  });
  let bound;
  try {
    bound = await server.start();
  } catch (e) {
    fail(`cannot listen: ${(e as Error).message}`);
  }
  // Before dropping root: the control socket is then root's (and the daemon's own).
  const observers = await startObservers({
    host,
    listen: listenSpecs(settings),
    ...(settings.metricsListen ? { metricsListen: settings.metricsListen } : {}),
    controlSocket: controlSocketPath(host, settings),
    gather: () => Promise.resolve([viewOf(host, server)]),
  });
  if (settings.user) {
    try {
      dropPrivileges(settings.user, settings.pidFile ? [settings.pidFile] : []);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  try {
    server.registry = await firstGeneration(host, loadPlugins);
  } catch (e) {
    fail((e as Error).message);
  }
  catchStrayErrors(host);
  server.open();
  host.log(LOGNOTICE, `qpsmtpd ${VERSION} listening on ${bound.map((a) => `${a.address}:${a.port}`).join(", ")}`, "server");

  const reloader = new Reloader(host, server, loadPlugins);
  process.on("SIGHUP", () => void reloader.reload());
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    host.log(LOGNOTICE, `${sig}: stopping; open transactions get ${settings.shutdownGrace}s`, "server");
    observers.close();
    void server.stop(settings.shutdownGrace * 1000).then(() => {
      removePidFile(host, settings);
      host.log(LOGINFO, "stopped", "server");
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const asked = starting.release();
  if (asked) stop(asked);
}

/**
 * Until `release`, a SIGTERM or SIGINT is kept instead of killing a daemon that is starting (the
 * default action would leave its pid file, and its last log lines unwritten); `release` says which
 * came first, to be obeyed once the daemon can stop.
 */
function keepStopSignals(): { release(): string | undefined } {
  let asked: string | undefined;
  const term = (): void => void (asked ??= "SIGTERM");
  const int = (): void => void (asked ??= "SIGINT");
  process.on("SIGTERM", term);
  process.on("SIGINT", int);
  return {
    release() {
      process.off("SIGTERM", term);
      process.off("SIGINT", int);
      return asked;
    },
  };
}

/** `workers` > 1: this process is the cluster's primary; the workers serve. */
async function primary(host: ServerHost, settings: DaemonSettings, starting: { release(): string | undefined }): Promise<void> {
  const { Primary } = await import("./server/cluster.ts");
  const listen = listenSpecs(settings);
  const p = new Primary({
    host,
    workers: settings.workers,
    dirs: host.configDir.dirs,
    listen,
    limitConnections: settings.limitConnections,
    maxFromIp: settings.maxFromIp,
    user: settings.user,
    shutdownGrace: settings.shutdownGrace,
    stopped: () => {
      removePidFile(host, settings);
      host.log(LOGINFO, "stopped", "server");
      process.exit(0);
    },
    failed: (message) => {
      removePidFile(host, settings);
      fail(message);
    },
    // The sockets are bound (by this process, for the workers): now the primary drops root too.
    listening: () => {
      if (settings.user) dropPrivileges(settings.user, settings.pidFile ? [settings.pidFile] : []);
    },
  });
  // The primary runs no plugin; an error of its own is logged, and it goes on supervising.
  catchStrayErrors(host);
  // The workers start first (they take the longest); the observers are made while they do, while
  // still root, like the listening sockets.
  await p.start(async () => {
    await startObservers({
      host,
      listen,
      ...(settings.metricsListen ? { metricsListen: settings.metricsListen } : {}),
      controlSocket: controlSocketPath(host, settings),
      gather: () => p.gather(),
    });
  });
  const asked = starting.release();
  if (asked) p.stop(asked);
}

/** A worker of the cluster, configured by the primary. */
async function worker(json: string): Promise<void> {
  delete process.env[WORKER_ENV]; // not for the programs plugins start
  const { runWorker } = await import("./server/worker.ts");
  installPluginModules({
    ...PLUGIN_DEPENDENCIES,
    qpsmtpd: api as unknown as Record<string, unknown>,
    "qpsmtpd/testing": () => import("./testing/mod.ts") as unknown as Promise<Record<string, unknown>>,
  });
  const cfg = JSON.parse(json) as WorkerConfig;
  await runWorker(cfg, {
    createHost,
    loadPlugins,
    send: (batch, done) => void process.send!(batch, undefined, {}, done ? () => done() : undefined),
    onMessage: (handler) => process.on("message", (m) => Array.isArray(m) && handler(m)),
  });
}

/** Where the control socket goes by default, when this process may make or write the directory. */
const RUN_DIR = "/run/qpsmtpd";

/** `control_socket`, else RUN_DIR/control.sock when it can be used, else in the spool directory. */
function controlSocketPath(host: ServerHost, settings: Pick<DaemonSettings, "controlSocket">): string {
  if (settings.controlSocket) return settings.controlSocket;
  try {
    fs.mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
    fs.accessSync(RUN_DIR, fs.constants.W_OK);
    return join(RUN_DIR, "control.sock");
  } catch {
    return join(host.spoolDir(), "control.sock");
  }
}

function removePidFile(host: ServerHost, settings: DaemonSettings): void {
  if (!settings.pidFile) return;
  try {
    fs.rmSync(settings.pidFile, { force: true });
  } catch (e) {
    host.log(LOGERROR, `cannot remove ${settings.pidFile}: ${(e as Error).message}`, "server");
  }
}

function claimPidFile(path: string): void {
  if (!path.startsWith("/")) fail(`--pid-file must be an absolute path, not ${path}`);
  try {
    const pid = Number(fs.readFileSync(path, "utf8").trim());
    if (pid > 0) {
      try {
        process.kill(pid, 0);
        fail(`found an already running qpsmtpd (pid ${pid} in ${path})`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EPERM") fail(`found an already running qpsmtpd (pid ${pid} in ${path})`);
      }
    }
  } catch { /* no pid file yet */ }
  fs.writeFileSync(path, `${process.pid}\n`);
}

await main(process.argv.slice(2));
