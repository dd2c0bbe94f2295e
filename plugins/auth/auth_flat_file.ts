/**
 * auth/auth_flat_file: checks AUTH PLAIN, LOGIN and CRAM-MD5 against a flat file.
 *
 * Hooks: auth-plain, auth-login, auth-cram-md5. Arguments: none (any word but the engine's
 * `timeout` and `loglevel` stops start-up).
 * Config files: `flat_auth_pw`, lines of `user@example.org:password` (the user must be a full
 * e-mail address; clear-text passwords are what CRAM-MD5 needs).
 * Replies: OK on a match; DENY on a wrong password; DECLINED for an unknown user (the next auth
 * plugin may know it).
 */
import { DECLINED, DENY, type Hooks, LOGINFO, parsePluginArgs, type Register, validate_password } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("auth/auth_flat_file", words, {});
};

export const hook_auth_plain: Hooks["auth-plain"] = function (_txn, _mech, user, passClear, passHash, ticket) {
  if (!user.includes("@")) {
    this.log(LOGINFO, `fail, ${user} is not a full e-mail address`);
    return DECLINED;
  }
  const want = user.toLowerCase();
  for (const line of this.qp.config_all("flat_auth_pw")) {
    const i = line.indexOf(":");
    if (i < 0 || line.slice(0, i).toLowerCase() !== want) continue;
    return validate_password({ srcClear: line.slice(i + 1), attemptClear: passClear, attemptHash: passHash, ticket, deny: DENY });
  }
  this.log(LOGINFO, `fail, no such user ${user}`);
  return DECLINED;
};
export const hook_auth_login = hook_auth_plain;
export const hook_auth_cram_md5 = hook_auth_plain;
