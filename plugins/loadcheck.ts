/**
 * loadcheck: refuses new connections for a while when the machine is overloaded.
 *
 * Hooks: connect.
 * Arguments: `max_load N` (default 7: the 1-minute load average above which connections are
 * deferred), `cache_time S` (default 10: how long a reading is reused), `uptime PROGRAM`
 * (read the load from this program's "load average:" output instead of the kernel's figure).
 * Any other word stops start-up.
 * Replies: `450 Server load too high (N), please try again later` and disconnect.
 */
import { execFile } from "node:child_process";
import { loadavg } from "node:os";
import { DECLINED, DENYSOFT_DISCONNECT, type HookContext, type Hooks, LOGINFO, parsePluginArgs, type Register } from "qpsmtpd";

interface Data {
  /** The last reading of the load, kept for `cache_time` seconds. */
  reading?: { at: number; load: number };
}

async function currentLoad(p: HookContext<Data>): Promise<number> {
  const cached = p.data.reading;
  const ttl = Number(p.options["cache_time"] ?? 10) * 1000;
  if (cached && p.server.now() - cached.at < ttl) return cached.load;
  let load = loadavg()[0] ?? 0;
  const prog = p.options["uptime"];
  if (prog) {
    const out = await new Promise<string>((r) => execFile(prog, [], { timeout: 2000 }, (e, o) => r(e ? "" : String(o))));
    const m = /load averages?:\s*([\d.]+)/.exec(out);
    if (m) load = Number(m[1]);
  }
  p.data.reading = { at: p.server.now(), load };
  return load;
}

// qpsmtpd's arguments, read by the hook; any other word stops start-up.
export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("loadcheck", words, { values: ["max_load", "cache_time", "uptime"] });
  for (const k of ["max_load", "cache_time"] as const) {
    const v = a.values[k];
    if (v !== undefined && !/^\d+(\.\d+)?$/.test(v)) throw new Error(`loadcheck: ${k} is a number, not "${v}"`);
  }
};

export const hook_connect: Hooks<Data>["connect"] = async function () {
  const max = Number(this.options["max_load"] ?? 7);
  const load = await currentLoad(this);
  if (load <= max) return DECLINED;
  this.log(LOGINFO, `fail, load ${load} above ${max}`);
  return [DENYSOFT_DISCONNECT, `Server load too high (${load}), please try again later`];
};
