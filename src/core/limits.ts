/**
 * Per-connection limits, read from config files with defaults. A bad value is reported (file and
 * line) and the default used, so one typo cannot take the server down.
 * @module
 */
import type { ConfigDir } from "../config/files.ts";
import { ConfigError } from "../config/errors.ts";

export interface Limits {
  /** `max_line_length`: bytes in a command line, CRLF excluded. @default 2048 */
  readonly lineLength: number;
  /** SASL responses may be longer (RFC 4954: 12288). */
  readonly authLineLength: number;
  /** `timeoutsmtpd`, else `timeout`: seconds to wait for a command line. @default 1200 */
  readonly commandTimeout: number;
  /** `timeout`: seconds to wait for each piece of DATA. @default 1200 */
  readonly dataTimeout: number;
  /** `data_rate_min`: bytes per second DATA must average after the grace period (0 = off). @default 128 */
  readonly dataRateMin: number;
  /** `data_rate_grace`: seconds of DATA before the rate floor applies. @default 60 */
  readonly dataRateGrace: number;
  /** `max_rcpt`: recipients per transaction. @default 1000 */
  readonly maxRcpt: number;
  /** `max_mail`: transactions (MAIL commands accepted) per session, 0 = no limit; LIMITS MAILMAX. @default 0 */
  readonly maxMail: number;
  /** `max_errors`: error replies before `421` and disconnect. @default 20 */
  readonly maxErrors: number;
  /** `max_auth_failures`: failed AUTH attempts before `421` and disconnect. @default 3 */
  readonly maxAuthFailures: number;
  /** `databytes`: message size limit, 0 = none. @default 0 */
  readonly databytes: number;
  /** `size_threshold`: bytes kept in memory before spooling to disk. @default 0 */
  readonly sizeThreshold: number;
  /** `spool_minfree`: free bytes the spool disk must keep; MAIL gets `452 4.3.1` below it
   * (or below 1.5 × databytes, if larger). @default 10485760 */
  readonly spoolMinFree: number;
  /** `max_header_size`: bytes of header block. @default 1048576 */
  readonly maxHeaderSize: number;
  /**
   * `stress_timeout`: seconds for every read, and the DATA rate floor's grace, while the server
   * is under stress (open connections at `stress_threshold` percent of `-c`). @default 10
   */
  readonly stressTimeout: number;
  /** `stress_threshold`: percent of the connection limit at which stress begins. @default 75 */
  readonly stressThreshold: number;
}

export function readLimits(config: ConfigDir, report: (message: string) => void): Limits {
  const int = (name: string, fallback: number): number => {
    try {
      return config.int(name, fallback);
    } catch (e) {
      if (e instanceof ConfigError) report(`${e.message}; using ${fallback}`);
      else throw e;
      return fallback;
    }
  };
  const timeout = int("timeout", 1200);
  return {
    lineLength: Math.max(512, int("max_line_length", 2048)),
    authLineLength: 12288,
    commandTimeout: int("timeoutsmtpd", timeout),
    dataTimeout: timeout,
    dataRateMin: int("data_rate_min", 128),
    dataRateGrace: int("data_rate_grace", 60),
    maxRcpt: int("max_rcpt", 1000),
    maxMail: int("max_mail", 0),
    maxErrors: int("max_errors", 20),
    maxAuthFailures: int("max_auth_failures", 3),
    databytes: int("databytes", 0),
    sizeThreshold: int("size_threshold", 0),
    maxHeaderSize: int("max_header_size", 1048576),
    spoolMinFree: int("spool_minfree", 10 * 1024 * 1024),
    stressTimeout: Math.max(1, int("stress_timeout", 10)),
    stressThreshold: Math.min(100, Math.max(1, int("stress_threshold", 75))),
  };
}
