/**
 * auth/authdeny: a generic `auth` hook that declines everything and logs the attempt. Because it
 * registers `auth`, PLAIN, LOGIN and CRAM-MD5 are all advertised; put it after the real auth
 * plugins so that an unknown user ends in 535.
 *
 * Hooks: auth. No config, no arguments.
 */
import { DECLINED, type Hooks, LOGWARN } from "qpsmtpd";

export const hook_auth: Hooks["auth"] = function (_txn, mech, user) {
  this.log(LOGWARN, `fail, ${mech} authentication for ${user} declined`);
  return DECLINED;
};
