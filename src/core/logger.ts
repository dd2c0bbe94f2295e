/**
 * Log routing: every log call goes to the logging hooks; with none registered, lines at or
 * below `loglevel` go to stderr as `PID (hook) plugin: message`.
 * @module
 */
import { formatLogLine } from "../api/log_line.ts";

export type LogSink = (level: number, hook: string, plugin: string, message: string, connId: string) => boolean;

export class Logger {
  /** Level for the stderr fallback. */
  level: number;
  /** Runs the logging hooks; returns false when there are none. */
  sink: LogSink | undefined;
  /** The least urgent level a logging hook keeps (`logs_up_to`); lines past it are not made. */
  sinkUpTo = Infinity;
  #inSink = false;

  constructor(level = 4) {
    this.level = level;
  }

  /** Whether a line at `level` could go anywhere (logging plugins filter for themselves). */
  wants(level: number): boolean {
    return this.sink !== undefined ? level <= this.sinkUpTo : level <= this.level;
  }

  log(level: number, message: string, hook = "", plugin = "", connId = ""): void {
    if (this.#inSink) return; // a logging plugin's own log calls would recurse
    if (this.sink) {
      if (level > this.sinkUpTo) return;
      this.#inSink = true;
      try {
        if (this.sink(level, hook, plugin, message, connId)) return;
      } finally {
        this.#inSink = false;
      }
    }
    if (level <= this.level) process.stderr.write(formatLogLine(hook, plugin, message, connId));
  }
}
