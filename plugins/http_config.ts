/**
 * http_config: config values fetched over HTTP. For a config item NAME it asks each URL prefix
 * in turn for `PREFIX` + `NAME` (`http://localhost/~smtpd/config/` gives
 * `http://localhost/~smtpd/config/rcpthosts`); the first answer with values wins. Lines are
 * read as config files are: blank lines and `#` comments dropped.
 *
 * Config hooks must answer at once, so answers come from a cache: a name's first read in a
 * session falls through to the files and marks the name; the next connection fetches the marked
 * names (and those older than `ttl`) before its greeting, and later reads are served from the
 * cache. A name no URL has values for falls through to the files. qpsmtpd fetched on every read
 * and had no cache ("It should do some simple caching to be used in production").
 *
 * Hooks: config, connect (the fetches).
 * Arguments: `URL...` (each containing `://`), `ttl SECONDS` (how long an answer is used before
 * it is fetched again, default 300), and the core's `timeout N`, which bounds the fetches of one
 * connection (default `plugin_timeout`; `timeout 2` is a good value). Any other word stops
 * start-up.
 * Failure policy: fail open. A server that is down, refuses or answers an error leaves the old
 * values in use (or the files, for a name never fetched) and is asked again after a minute at
 * the most; one that does not answer holds that one greeting until the time limit, never
 * longer. Each failure is logged at LOGWARN. `qpsmtpd check` asks each URL for `me`.
 */
import { type Check, DECLINED, type Hooks, type Init, LOGINFO, LOGWARN, OK, parsePluginArgs, type PluginContext } from "qpsmtpd";

interface Entry {
  /** The values, empty when no URL had any; undefined until a fetch answered. */
  values?: string[];
  /** When the values were fetched, epoch ms (server clock). */
  fetched: number;
  /** Not before this time is a failed name asked again. */
  retryAt: number;
}

interface Data {
  urls: string[];
  ttlMs: number;
  cache: Map<string, Entry>;
  /** A refresh in progress (one at a time for the whole server). */
  refreshing?: Promise<void>;
}

export const init: Init<Data> = function (_server, ...args) {
  const a = parsePluginArgs("http_config", args, { values: ["ttl"], positional: [0, args.length], usage: "URL..." });
  const urls = [...a.positional];
  for (const url of urls) {
    if (!url.includes("://")) throw new Error(`http_config: unknown argument "${url}" (it takes: URL..., ttl VALUE)`);
    try {
      new URL(url);
    } catch {
      throw new Error(`http_config: "${url}" is not a URL`);
    }
  }
  if (urls.length === 0) throw new Error("http_config needs at least one URL prefix");
  const v = a.values.ttl ?? "300";
  if (!/^\d+$/.test(v)) throw new Error(`http_config: ttl wants seconds, not "${v}"`);
  const ttl = Number(v);
  Object.assign(this.data, { urls, ttlMs: ttl * 1000, cache: new Map() } satisfies Data);
};

export const hook_config: Hooks<Data>["config"] = function (_txn, name) {
  const e = this.data.cache.get(name);
  if (!e) {
    this.data.cache.set(name, { fetched: 0, retryAt: 0 }); // marked: the next connection fetches it
    return DECLINED;
  }
  return e.values?.length ? [OK, ...e.values] : DECLINED;
};

/** Config lines of an HTTP answer: trimmed, without blank lines and comments. */
function configLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** Asks each URL for `name`: the first values, `[]` when every URL answered without any. Throws on a failure. */
async function fetchName(p: PluginContext<Data>, name: string): Promise<string[]> {
  let failure: Error | undefined;
  for (const url of p.data.urls) {
    try {
      const res = await fetch(url + encodeURIComponent(name), { signal: p.signal });
      const text = await res.text();
      if (res.status === 200) {
        const values = configLines(text);
        if (values.length) return values;
      } else if (res.status !== 404 && res.status !== 204) failure = new Error(`${url}${name}: HTTP ${res.status}`);
    } catch (e) {
      if (p.signal.aborted) throw e;
      failure = new Error(`${url}${name}: ${(e as Error).message}`);
    }
  }
  if (failure) throw failure;
  return [];
}

async function refresh(p: PluginContext<Data>, names: string[]): Promise<void> {
  const now = p.server.now();
  await Promise.all(names.map(async (name) => {
    const e = p.data.cache.get(name) ?? { fetched: 0, retryAt: 0 };
    try {
      e.values = await fetchName(p, name);
      e.fetched = now;
      p.log(LOGINFO, `${name}: ${e.values.length} value(s)`);
    } catch (err) {
      // Keep what we had; ask again after a minute at most, so a dead server is not hammered.
      e.retryAt = now + Math.min(p.data.ttlMs, 60_000);
      p.log(LOGWARN, `fetching ${name} failed, ${e.values ? "keeping the old values" : "the files answer"}: ${(err as Error).message}`);
    }
    p.data.cache.set(name, e);
  }));
}

export const hook_connect: Hooks<Data>["connect"] = async function () {
  const d = this.data;
  if (d.refreshing) return DECLINED; // another connection is fetching; this one uses the cache
  const now = this.server.now();
  const due = [...d.cache].filter(([, e]) => e.retryAt <= now && (e.values === undefined || e.fetched + d.ttlMs <= now)).map(([n]) => n);
  if (due.length === 0) return DECLINED;
  d.refreshing = refresh(this, due);
  try {
    await d.refreshing;
  } finally {
    d.refreshing = undefined;
  }
  return DECLINED;
};

export const check: Check<Data> = async function () {
  const out: string[] = [];
  for (const url of this.data.urls) {
    try {
      const res = await fetch(`${url}me`, { signal: this.signal });
      await res.body?.cancel();
      if (res.status >= 500) out.push(`${url}: HTTP ${res.status}`);
    } catch (e) {
      out.push(`${url} does not answer: ${(e as Error).message}`);
    }
  }
  return out;
};
