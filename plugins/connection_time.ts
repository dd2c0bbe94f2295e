/**
 * connection_time: logs how long each connection lasted.
 *
 * Hooks: connect, post-connection.
 * Arguments: `loglevel` (default LOGINFO).
 * Notes: connection `connection_start`.
 */
import { DECLINED, LOGINFO, type Hooks } from "qpsmtpd";

export const hook_connect: Hooks["connect"] = function () {
  this.connection.notes("connection_start", performance.now());
  return DECLINED;
};

export const hook_post_connection: Hooks["post-connection"] = function () {
  const start = Number(this.connection.notes("connection_start"));
  if (!Number.isFinite(start)) return DECLINED;
  const secs = ((performance.now() - start) / 1000).toFixed(3);
  this.log(LOGINFO, `${secs} s`);
  return DECLINED;
};
