/**
 * For the tests of a plugin's arguments: a word the plugin does not know stops the load, and the
 * loader's message names the config line, the plugin and the word.
 */
import { expect } from "bun:test";
import { TestSession, type TestSessionOptions } from "../../src/testing/harness.ts";
import { captureStderr } from "./sessions.ts";

/** Expects loading the config/plugins line `line` to fail on `word` (`(override plugins):1:` is the line). */
export async function expectUnknownArgument(line: string, word: string, opts: TestSessionOptions = {}): Promise<void> {
  const plugin = line.split(" ")[0]!;
  await expect(TestSession.start({ ...opts, plugins: [line] })).rejects.toThrow(
    `(override plugins):1: plugin ${plugin} failed to load: ${plugin}: unknown argument "${word}"`,
  );
}

/** Loads `line` with the server's log at LOGWARN (load-time lines go to stderr); that log and the session. */
export async function loadWarnings(line: string, opts: TestSessionOptions = {}): Promise<{ log: string; t: TestSession }> {
  let t!: TestSession;
  const log = await captureStderr(async () => {
    t = await TestSession.start({ ...opts, plugins: [line], logLevel: 4 });
  });
  return { log, t };
}
