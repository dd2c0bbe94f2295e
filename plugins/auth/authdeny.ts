/**
 * auth/authdeny: a generic `auth` hook that declines everything and logs the attempt. Because it
 * registers `auth`, PLAIN, LOGIN and CRAM-MD5 are all advertised; put it after the real auth
 * plugins so that an unknown user ends in 535.
 *
 * Hooks: auth. No config, no arguments (a word other than the
 * engine's `timeout` and `loglevel` stops start-up).
 */
import { DECLINED, type Hooks, LOGWARN, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("auth/authdeny", words, {});
};

export const hook_auth: Hooks["auth"] = function (_txn, mech, user) {
  this.log(LOGWARN, `fail, ${mech} authentication for ${user} declined`);
  return DECLINED;
};
