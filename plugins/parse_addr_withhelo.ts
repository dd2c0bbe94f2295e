/**
 * parse_addr_withhelo: after a plain HELO (RFC 821 client), MAIL and RCPT may carry no ESMTP
 * parameters; after EHLO they parse as usual.
 *
 * Hooks: mail_parse, rcpt_parse. No config, no arguments (a word other than the
 * engine's `timeout` and `loglevel` stops start-up).
 * Replies: `501 Syntax error in command` for parameters after HELO.
 */
import { DECLINED, type Hooks, type LineParser, OK, parsePathArgument, parsePluginArgs, type Register } from "qpsmtpd";

// No arguments but the engine's `timeout` and `loglevel`: any other word is a mistake in the
// config line, and stops start-up with its file and line.
export const register: Register = function (_server, ...words) {
  parsePluginArgs("parse_addr_withhelo", words, {});
};

function parser(): LineParser {
  return (verb, line) => {
    const arg = parsePathArgument(line, verb === "mail" ? "from" : "to");
    if (!arg || arg.params.length > 0) return [0, "Syntax error in command"];
    return [OK, arg.path];
  };
}

export const hook_mail_parse: Hooks["mail_parse"] = function () {
  return this.connection.hello === "helo" ? [OK, parser()] : DECLINED;
};
export const hook_rcpt_parse: Hooks["rcpt_parse"] = function () {
  return this.connection.hello === "helo" ? [OK, parser()] : DECLINED;
};
