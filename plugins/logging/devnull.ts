/**
 * logging/devnull: discards every log line. Load it from `config/logging`.
 *
 * Hooks: logging. No arguments.
 */
import { DECLINED, type Hooks } from "qpsmtpd";

export const hook_logging: Hooks["logging"] = () => DECLINED;
