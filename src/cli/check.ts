/**
 * `qpsmtpd check`: prints the migration report (src/plugin/check.ts builds it). Each `logging`
 * and `plugins` line with what it resolved to goes to stdout, then the warnings and problems to
 * stderr; the exit code is 1 only when there is a problem.
 * @module
 */

/** The report as `checkConfig` returns it. */
export interface CheckResult {
  readonly lines: readonly string[];
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
  readonly plugins: number;
}

/** Writes the report; returns the exit code. */
export function printCheck(r: CheckResult, dir: string, out: (text: string) => void, err: (text: string) => void): number {
  for (const l of r.lines) out(`${l}\n`);
  for (const w of r.warnings) err(`qpsmtpd check: warning: ${w}\n`);
  for (const p of r.problems) err(`qpsmtpd check: ${p}\n`);
  if (r.problems.length) {
    err(`qpsmtpd check: ${r.problems.length} problem(s) in ${dir}; fix them before starting the daemon\n`);
    return 1;
  }
  out(`qpsmtpd check: OK, ${r.plugins} plugins loaded from ${dir}${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ""}\n`);
  return 0;
}
