/**
 * The log line format of the stderr fallback, for logging plugins that keep it.
 * @module
 */

/** `PID CONNECTION (hook) plugin: message` with a final LF; empty parts are left out. */
export function formatLogLine(hook: string, plugin: string, message: string, connectionId: string): string {
  const where = `${hook ? `(${hook}) ` : ""}${plugin ? `${plugin}: ` : ""}`;
  return `${process.pid}${connectionId ? ` ${connectionId}` : ""} ${where}${message}\n`;
}
