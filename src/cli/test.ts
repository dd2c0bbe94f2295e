/**
 * `qpsmtpd test FILE...`: runs plugin tests written with `"qpsmtpd/testing"`, with the harness
 * and the built-in plugins embedded in the binary.
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { runTests } from "../testing/runner.ts";

/** Imports each file (which declares its tests), runs them, and returns how many failed. */
export async function testFiles(files: readonly string[], write: (line: string) => void): Promise<number> {
  let failed = 0;
  for (const f of files) {
    try {
      await import(pathToFileURL(resolve(f)).href);
    } catch (e) {
      failed++;
      write(`FAIL ${f}: cannot load it: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const r = await runTests(write);
  return failed + r.failed;
}
