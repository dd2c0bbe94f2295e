/**
 * Errors that name where they come from: a config file and line, or a plugin.
 * @module
 */

/** A config file is wrong; the message names the file and line. */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super(`${file}${line > 0 ? `:${line}` : ""}: ${message}`);
    this.name = "ConfigError";
    this.file = file;
    this.line = line;
  }
}

/** A plugin cannot be found, loaded or registered. */
export class PluginLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PluginLoadError";
  }
}
