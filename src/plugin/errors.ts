/**
 * A plugin cannot be found, loaded or registered: the error names the config file and line.
 * @module
 */

/** A plugin cannot be found, loaded or registered. */
export class PluginLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PluginLoadError";
  }
}
