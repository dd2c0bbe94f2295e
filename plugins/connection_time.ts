/**
 * connection_time: logs how long each connection lasted.
 *
 * Hooks: connect, post-connection.
 * Arguments: `loglevel` (default LOGINFO), or qpsmtpd's older form, the level alone
 * (`connection_time LOGDEBUG`): the level of the duration's line. Any other word stops start-up.
 * Notes: connection `connection_start`.
 */
import { DECLINED, type Hooks, LOGINFO, parseLogLevel, parsePluginArgs, type Register } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** `performance.now()` when the client connected. */
    connection_start: number;
  }
}

interface Data {
  /** The level of the duration's line. */
  level: number;
}

export const register: Register<Data> = function (_server, ...words) {
  const a = parsePluginArgs("connection_time", words, { positional: [0, words.length], usage: "LEVEL" });
  // One LEVEL: the first word that is not a level, or a second word, is the mistake.
  const odd = a.positional.find((w, i) => i > 0 || parseLogLevel(w) === undefined);
  if (odd !== undefined) throw new Error(`connection_time: unknown argument "${odd}" (it takes: LEVEL, a log level)`);
  this.data.level = a.positional[0] === undefined ? LOGINFO : parseLogLevel(a.positional[0])!;
};

export const hook_connect: Hooks<Data>["connect"] = function () {
  this.connection.notes("connection_start", performance.now());
  return DECLINED;
};

export const hook_post_connection: Hooks<Data>["post-connection"] = function () {
  const start = this.connection.notes("connection_start");
  if (start === undefined) return DECLINED;
  const secs = ((performance.now() - start) / 1000).toFixed(3);
  this.log(this.data.level, `${secs} s`);
  return DECLINED;
};
