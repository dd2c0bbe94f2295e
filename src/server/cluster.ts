/**
 * The primary of a cluster (`workers` > 1): it serves no connection and runs no plugin. It forks
 * the workers with their configuration in the environment, binds the listening sockets when
 * they ask (node:cluster's SCHED_NONE: one socket per port, shared by every worker, each
 * accepting for itself; under Bun the default would pass every connection through the primary),
 * counts for `-c` and `-m` (the Ledger) and for stress and `child_addrs` (the LoadBoard),
 * checks while they start that no other program listens on their ports,
 * passes SIGHUP and SIGTERM on to every worker, and replaces a worker that dies, with a
 * back-off when they die young. Its own log lines go through a worker's logging plugins
 * (stderr when no worker is up).
 *
 * A worker serves as soon as it listens and the port check is done: it need not wait for the
 * others to start (a cluster of two on two cores would otherwise answer its first connection when
 * the slower has loaded its plugins).
 *
 * Privileges (`-u`), as qpsmtpd-forkserver: the sockets are bound as root (by the primary, when
 * the first worker asks), every worker switches to the user before it loads its plugins, and the
 * primary switches once the first worker listens (every socket is bound then), before any worker
 * serves. Other workers, and a replacement, get the sockets the primary holds, so they need no
 * root to bind port 25.
 * @module
 */
import type { Worker } from "node:cluster";
import { LOGCRIT, LOGERROR, LOGNOTICE, LOGWARN } from "../api/codes.ts";
import { VERSION } from "../api/version.ts";
import type { ServerHost } from "../core/server_host.ts";
import type { ListenSpec } from "../config/settings.ts";
import { Ledger } from "./admission.ts";
import { Backoff } from "./backoff.ts";
import { LoadBoard } from "./load.ts";
import type { BoundAddress } from "../runtime/sockets.ts";
import { type Down, type Up, WORKER_ENV, type WorkerConfig } from "./messages.ts";
import { BATCH_MS, Outbox } from "./outbox.ts";
import type { ProcessView } from "./observe.ts";
import { clashes, listeningNow } from "./ports.ts";

/** What every worker is given (WorkerConfig but its slot), and the primary's own. */
export interface PrimaryOptions extends Omit<WorkerConfig, "slot"> {
  /** The primary's host: config (stress_threshold, loglevel) and the stderr logger. */
  readonly host: ServerHost;
  /** Called once every worker is gone after a stop (remove the pid file, exit). */
  readonly stopped: () => void;
  /** The daemon cannot start (a port taken; a worker that could not start before all served): the message for stderr, then exit 1. */
  readonly failed: (message: string) => void;
  /** A worker listens, so every socket is bound: the primary drops privileges here (throws when it cannot). */
  readonly listening: () => void;
}

/** One worker's place: it keeps its number and back-off across replacements. */
interface Slot {
  readonly n: number;
  readonly backoff: Backoff;
  worker: Worker | undefined;
  out: Outbox<Down> | undefined;
  startedAt: number;
  /** It listens (its plugins are loaded). */
  ready: boolean;
  /** It was told to serve (hello). */
  serving: boolean;
  fatal: string | undefined;
  restart: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The first listener whose port something on this machine listens on already, as a message; the
 * sockets of processes `ours` are not counted.
 */
export async function portTaken(specs: readonly ListenSpec[], ours: readonly number[]): Promise<string | undefined> {
  const now = await listeningNow(ours);
  for (const spec of specs) {
    const clash = spec.port === 0 ? undefined : clashes(spec.host, spec.port, now);
    if (clash) return `${spec.host}:${spec.port}: address in use (${clash.address}:${clash.port} is listening already)`;
  }
  return undefined;
}

export class Primary {
  readonly #o: PrimaryOptions;
  readonly #slots: Slot[] = [];
  readonly #ledger: Ledger;
  readonly #board: LoadBoard;
  readonly #byId = new Map<number, Slot>();
  #announced = false;
  /** The port check and the caller's work alongside are done: workers may serve. */
  #cleared = false;
  /** The primary has dropped its privileges (or had none to drop). */
  #switched = false;
  /** Where the first worker listens, for the start-up line. */
  #bound: readonly BoundAddress[] = [];
  #stopping = false;
  #flushScheduled = false;
  #observeId = 0;
  /** Observations waiting for the workers' views. */
  readonly #pending = new Map<number, { views: ProcessView[]; left: number; done: (v: ProcessView[]) => void }>();
  /** node:cluster's fork, loaded when the primary starts. */
  #forkFn: ((env: Record<string, string>) => Worker) | undefined;

  constructor(o: PrimaryOptions) {
    this.#o = o;
    const send = (id: number, m: Down, urgent: boolean): void => this.#byId.get(id)?.out?.post(m, urgent);
    this.#ledger = new Ledger({ ...o, send: (id, m) => send(id, m, true) });
    this.#board = new LoadBoard({
      limitConnections: o.limitConnections,
      threshold: () => {
        try {
          return o.host.configDir.int("stress_threshold", 75);
        } catch {
          return 75;
        }
      },
      send: (id, m) => send(id, m, false),
      log: (level, message) => this.log(level, message),
    });
  }

  /**
   * Forks every worker and takes the signals. While they start, it checks their ports and runs
   * `alongside` (main.ts: the control socket); no worker serves before both are done.
   */
  async start(alongside: () => Promise<void>): Promise<void> {
    const cluster = (await import("node:cluster")).default;
    // Workers accept on the primary's socket themselves: no IPC per connection.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    this.#forkFn = cluster.fork.bind(cluster);
    for (let n = 1; n <= this.#o.workers; n++) {
      const slot: Slot = {
        n,
        backoff: new Backoff(),
        worker: undefined,
        out: undefined,
        startedAt: 0,
        ready: false,
        serving: false,
        fatal: undefined,
        restart: undefined,
      };
      this.#slots.push(slot);
    }
    for (const slot of this.#slots) this.#fork(slot);
    process.on("SIGHUP", () => this.reload());
    process.on("SIGTERM", () => this.stop("SIGTERM"));
    process.on("SIGINT", () => this.stop("SIGINT"));
    let why: string | undefined;
    try {
      const [taken] = await Promise.all([portTaken(this.#o.listen, [process.pid, ...this.pids.filter((p) => p > 0)]), alongside()]);
      if (taken) why = `cannot listen: ${taken}`;
    } catch (e) {
      why = (e as Error).message;
    }
    if (this.#stopping) return;
    if (why) return this.#fail(why);
    this.#cleared = true;
    for (const [id, s] of this.#byId) if (s.ready) this.#serve(s, id);
  }

  /** The daemon cannot start: the workers go at once, and the caller says why. */
  #fail(message: string): void {
    this.#stopping = true;
    for (const s of this.#slots) s.worker?.process.kill("SIGKILL");
    this.#o.failed(message);
  }

  #fork(slot: Slot): void {
    const cfg: WorkerConfig = {
      slot: slot.n,
      workers: this.#o.workers,
      dirs: this.#o.dirs,
      listen: this.#o.listen,
      limitConnections: this.#o.limitConnections,
      maxFromIp: this.#o.maxFromIp,
      user: this.#o.user,
      shutdownGrace: this.#o.shutdownGrace,
    };
    const w = this.#forkFn!({ [WORKER_ENV]: JSON.stringify(cfg) });
    const id = w.id;
    slot.worker = w;
    slot.startedAt = Date.now();
    slot.ready = false;
    slot.serving = false;
    slot.fatal = undefined;
    slot.out = new Outbox<Down>((batch) => {
      try {
        w.send(batch);
      } catch { /* the worker is going; its exit is handled */ }
    });
    this.#byId.set(id, slot);
    this.#board.join(id);
    w.on("message", (batch: Up[]) => {
      if (!Array.isArray(batch)) return;
      for (const m of batch) this.#receive(slot, id, m);
      if (this.#board.dirty && !this.#flushScheduled) {
        this.#flushScheduled = true;
        setTimeout(() => {
          this.#flushScheduled = false;
          this.#board.flush();
        }, BATCH_MS);
      }
    });
    w.on("exit", (code: number | null, signal: string | null) => {
      this.#exited(slot, id, signal ? `was killed by ${signal}` : `exited with code ${code}`);
    });
    w.on("error", (e: Error) => {
      // A worker that could not be started at all (with -u, the user may not run the executable)
      // has no exit event: it ended here. Any other error is a send to a worker that just died,
      // whose exit is handled.
      if (w.process.pid === undefined && slot.worker === w) this.#exited(slot, id, `could not be started (${e.message})`);
    });
  }

  #receive(slot: Slot, id: number, m: Up): void {
    switch (m.t) {
      case "want":
      case "locked":
      case "closed":
        this.#ledger.receive(id, m);
        break;
      case "session":
      case "subscribe":
        this.#board.receive(id, m);
        break;
      case "fatal":
        slot.fatal = m.message;
        break;
      case "view": {
        const p = this.#pending.get(m.id);
        if (!p) break;
        p.views.push(m.view);
        if (--p.left === 0) {
          this.#pending.delete(m.id);
          p.done(p.views);
        }
        break;
      }
      case "ready": {
        if (this.#stopping) {
          slot.out?.post({ t: "stop", signal: "SIGTERM" }, true);
          break;
        }
        slot.ready = true;
        if (this.#bound.length === 0) this.#bound = m.bound;
        if (this.#cleared) this.#serve(slot, id);
        break;
      }
    }
  }

  /** A worker that listens serves: once the primary has switched users (as one process serves nothing before). */
  #serve(slot: Slot, id: number): void {
    if (!this.#switched) {
      try {
        this.#o.listening();
      } catch (e) {
        return this.#fail((e as Error).message);
      }
      this.#switched = true;
    }
    slot.serving = true;
    this.#hello(slot, id);
    if (this.#announced) {
      this.log(LOGNOTICE, `worker ${slot.n} (pid ${slot.worker?.process.pid}) replaced the one that died`);
    } else if (this.#slots.every((s) => s.serving)) {
      this.#announced = true;
      const where = this.#bound.map((a) => `${a.address}:${a.port}`).join(", ");
      this.log(LOGNOTICE, `qpsmtpd ${VERSION} listening on ${where} (${this.#o.workers} workers, primary pid ${process.pid})`);
    }
  }

  /** A worker starts serving: it joins the ledger, holding its locked keys. */
  #hello(slot: Slot, id: number): void {
    const locked = this.#ledger.join(id);
    slot.out?.post({ t: "hello", locked, stressed: this.#board.stressed }, true);
  }

  /** Worker `id` of `slot` has ended (`how`: "exited with code 1", ...): replaced, or the daemon stops. */
  #exited(slot: Slot, id: number, how: string): void {
    this.#byId.delete(id);
    this.#ledger.leave(id);
    this.#board.leave(id);
    this.#board.flush();
    const pid = slot.worker?.process.pid;
    slot.worker = undefined;
    slot.out = undefined;
    slot.ready = false;
    slot.serving = false;
    if (this.#stopping) {
      if (this.#slots.every((s) => !s.worker)) this.#o.stopped();
      return;
    }
    if (!this.#announced) {
      // Before every first worker serves, a worker that cannot start stops the daemon, as one process would.
      return this.#fail(slot.fatal ?? `worker ${slot.n} ${how} while starting`);
    }
    const delay = slot.backoff.next(Date.now() - slot.startedAt);
    const why = slot.fatal ? `: ${slot.fatal}` : "";
    this.log(
      slot.backoff.streak > 1 ? LOGCRIT : LOGERROR,
      `worker ${slot.n}${pid === undefined ? "" : ` (pid ${pid})`} ${how}${why}; starting a new one${delay ? ` in ${delay} ms` : ""}` +
        (slot.backoff.streak > 1 ? ` (${slot.backoff.streak} died young in a row)` : ""),
    );
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (!this.#stopping) this.#fork(slot);
    }, delay);
  }

  /** SIGHUP: every worker reloads config and plugins for its new connections. */
  reload(): void {
    this.#o.host.configDir.invalidate();
    const n = this.#slots.filter((s) => s.worker).length;
    this.log(LOGNOTICE, `SIGHUP: ${n} workers reload config and plugins`);
    for (const s of this.#slots) s.out?.post({ t: "reload" }, true);
  }

  /** SIGTERM: every worker stops accepting and drains; the primary goes when they are gone. */
  stop(signal: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.log(LOGNOTICE, `${signal}: stopping; open transactions get ${this.#o.shutdownGrace}s`);
    for (const s of this.#slots) {
      clearTimeout(s.restart);
      s.out?.post({ t: "stop", signal }, true);
    }
    if (this.#slots.every((s) => !s.worker)) {
      this.#o.stopped();
      return;
    }
    // A worker that does not go after the grace and its own 421s is killed.
    const timer = setTimeout(() => {
      for (const s of this.#slots) {
        if (!s.worker) continue;
        this.log(LOGWARN, `worker ${s.n} (pid ${s.worker.process.pid}) still there after the grace; killing it`);
        s.worker.process.kill("SIGKILL");
      }
    }, (this.#o.shutdownGrace + 10) * 1000);
    (timer as { unref?: () => void }).unref?.();
  }

  /** A line of the primary's: through the first serving worker's logging plugins, else stderr. */
  log(level: number, message: string): void {
    const to = this.#slots.find((s) => s.ready && s.out);
    if (to) to.out!.post({ t: "log", level, message }, true);
    else this.#o.host.log(level, message, "server", "primary");
  }

  /** Every serving worker's view (metrics, status); a worker that does not answer within a second is left out. */
  gather(): Promise<ProcessView[]> {
    const ready = this.#slots.filter((s) => s.ready && s.out);
    if (ready.length === 0) return Promise.resolve([]);
    const id = ++this.#observeId;
    return new Promise((resolve) => {
      const p = { views: [] as ProcessView[], left: ready.length, done: resolve };
      this.#pending.set(id, p);
      for (const s of ready) s.out!.post({ t: "observe", id }, true);
      const t = setTimeout(() => {
        if (this.#pending.delete(id)) resolve(p.views);
      }, 1000);
      (t as { unref?: () => void }).unref?.();
    });
  }

  /** Worker pids by slot (for the log and tests). */
  get pids(): number[] {
    return this.#slots.map((s) => s.worker?.process.pid ?? 0);
  }
}
