/**
 * Every built-in plugin, by the name used in `config/plugins`. This static list is what
 * `bun build --compile` embeds; a test checks that every plugin file is in it.
 * @module
 */
import type { PluginModule } from "../src/core/hooks.ts";
import * as auth_flat_file from "./auth/auth_flat_file.ts";
import * as authdeny from "./auth/authdeny.ts";
import * as count_unrecognized_commands from "./count_unrecognized_commands.ts";
import * as dont_require_anglebrackets from "./dont_require_anglebrackets.ts";
import * as logging_warn from "./logging/warn.ts";
import * as queue_discard from "./queue/discard.ts";
import * as queue_maildir from "./queue/maildir.ts";
import * as queue_smtp_forward from "./queue/smtp-forward.ts";
import * as rcpt_ok from "./rcpt_ok.ts";
import * as relay from "./relay.ts";
import * as tls from "./tls.ts";

/** Assigning each module here type-checks its hooks against the contract. */
export const BUILTINS: Readonly<Record<string, PluginModule>> = {
  "auth/auth_flat_file": auth_flat_file,
  "auth/authdeny": authdeny,
  count_unrecognized_commands,
  dont_require_anglebrackets,
  "logging/warn": logging_warn,
  "queue/discard": queue_discard,
  "queue/maildir": queue_maildir,
  "queue/smtp-forward": queue_smtp_forward,
  rcpt_ok,
  relay,
  tls,
};
