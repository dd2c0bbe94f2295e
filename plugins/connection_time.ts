/**
 * connection_time: logs how long each connection lasted.
 *
 * Hooks: connect, post-connection.
 * Arguments: `loglevel` (default LOGINFO).
 * Notes: connection `connection_start`.
 */
import { DECLINED, type Hooks, LOGINFO } from "qpsmtpd";

declare module "qpsmtpd" {
  interface ConnectionNotes {
    /** `performance.now()` when the client connected. */
    connection_start: number;
  }
}

export const hook_connect: Hooks["connect"] = function () {
  this.connection.notes("connection_start", performance.now());
  return DECLINED;
};

export const hook_post_connection: Hooks["post-connection"] = function () {
  const start = this.connection.notes("connection_start");
  if (start === undefined) return DECLINED;
  const secs = ((performance.now() - start) / 1000).toFixed(3);
  this.log(LOGINFO, `${secs} s`);
  return DECLINED;
};
