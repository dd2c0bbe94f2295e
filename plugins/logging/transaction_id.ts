/**
 * logging/transaction_id: qpsmtpd's demo of the transaction id. It writes log lines at or below
 * a level to stderr, led by the id of the transaction they belong to:
 * `CONNECTION.N PLUGIN plugin: message` (as logging/connection_id, whose line format it shares).
 * Load it from `config/logging`.
 *
 * The API has no transaction id, so this plugin makes one: the connection id and the number of
 * the transaction on that connection. A transaction begins with MAIL (RSET, a new HELO or the
 * end of DATA end one), so lines before the first MAIL carry `.0`, the first message's `.1`, a
 * second message on the same connection `.2`; the server's own lines carry `???`.
 *
 * Hooks: logging; mail (counts the transactions; it declines, deciding nothing).
 * Arguments: `[LEVEL]`, the highest level written, a number (0-7) or a name; default LOGWARN.
 * `loglevel L` says the same. Any other word stops start-up.
 * Its own lines are not written.
 * Failure policy: none needed (stderr); a bad level stops start-up. The counters of the last
 * 65536 connections are kept, so a connection outliving 65536 newer ones starts again at `.0`.
 * qpsmtpd 0.94's plugin died at load ("currently unsupported": Transaction->id was removed).
 */
import { DECLINED, type Hooks, type Init, LOGWARN, parseLogLevel, parsePluginArgs, type Transaction } from "qpsmtpd";

interface Data {
  level: number;
}

interface Count {
  n: number;
  /** The transaction counted last, so two instances of this plugin count it once. */
  last: WeakRef<Transaction>;
}

/** Per connection id; shared by every instance and reload, so the numbers never restart. */
const counts = new Map<string, Count>();
const KEEP = 65536;

export const init: Init<Data> = function (_server, ...args) {
  // The level alone (qpsmtpd's form), or as `loglevel L` like logging/file's and syslog's.
  const a = parsePluginArgs("logging/transaction_id", args, { positional: [0, args.length], usage: "LEVEL" });
  if (a.positional.length > 1) {
    // One LEVEL: of two words, the one that is not a level is the mistake (`levl LOGINFO`).
    const odd = a.positional.find((w) => parseLogLevel(w) === undefined) ?? a.positional[1];
    throw new Error(`logging/transaction_id: unknown argument "${odd}" (it takes: LEVEL, loglevel VALUE)`);
  }
  const level = a.positional[0] ?? a.values.loglevel;
  const n = level === undefined ? LOGWARN : parseLogLevel(level);
  if (n === undefined) throw new Error(`logging/transaction_id: "${level}" is not a log level`);
  this.data.level = n;
  this.logs_up_to(n);
};

/** qpsmtpd's line (as logging/connection_id; built-ins share no code but "qpsmtpd"). */
function qpsmtpdLine(id: string, hook: string, plugin: string, message: string): string {
  const who = plugin ? ` ${plugin} plugin:` : hook ? ` running plugin (${hook}):` : "";
  return `${id}${who} ${message}\n`;
}

/** The id of the transaction a connection is in now. */
export function transactionId(connection_id: string): string {
  return connection_id ? `${connection_id}.${counts.get(connection_id)?.n ?? 0}` : "???";
}

export const hook_mail: Hooks<Data>["mail"] = function (txn) {
  const id = this.connection.id;
  const c = counts.get(id);
  if (c?.last.deref() === txn) return DECLINED;
  counts.delete(id); // re-inserted last: the oldest connections go first
  counts.set(id, { n: (c?.n ?? 0) + 1, last: new WeakRef(txn) });
  if (counts.size > KEEP) counts.delete(counts.keys().next().value!);
  return DECLINED;
};

export const hook_logging: Hooks<Data>["logging"] = function (_txn, level, hook, plugin, message, connection_id) {
  if (level > this.data.level || plugin === this.plugin_name()) return DECLINED;
  process.stderr.write(qpsmtpdLine(transactionId(connection_id), hook, plugin, message));
  return DECLINED;
};
