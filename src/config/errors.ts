/**
 * A config file is wrong: the error names the file and line.
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
