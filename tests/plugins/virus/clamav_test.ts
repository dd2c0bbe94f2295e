/**
 * virus/clamav with the real command-line scanners: Debian's clamscan on a two-signature
 * database, and clamdscan handing the file to a private clamd. A scanner that fails or hangs is
 * a shell script standing in for a broken clamscan (no real program fails on demand).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOGERROR, LOGINFO, LOGWARN } from "qpsmtpd";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { type Clamd, startClamd, VIRUS_MARKER, VIRUS_NAME, writeSignatures } from "../../helpers/clamd.ts";
import { daemonDir } from "../../helpers/daemon.ts";
import { deliver, headerOf, logged, mail } from "../../helpers/scan.ts";
import { script } from "../../helpers/sessions.ts";

let db: string;
let clamd: Clamd;
beforeAll(async () => {
  db = daemonDir("clamscan-db");
  writeSignatures(db);
  clamd = await startClamd();
});
afterAll(async () => {
  await clamd?.stop();
});

const NAME = "virus::clamav";
const clamscan = (...args: string[]) => ["virus/clamav", "clamscan_path=/usr/bin/clamscan", `database=${db}`, ...args].join(" ");
const infected = () => mail("invoice", `Please see the attachment.\n${VIRUS_MARKER}\nRegards`);
const clean = () => mail("lunch", "Shall we have lunch on Tuesday?");

describe("virus/clamav with clamscan", () => {
  test("action=reject refuses a virus", async () => {
    const { r, t, queued } = await deliver([clamscan("action=reject")], infected());
    expect([r.code, r.text]).toEqual([552, `Virus Found: ${VIRUS_NAME}`]);
    expect(queued).toBeUndefined();
    expect(logged(t, NAME, /^fail, virus\(es\) found: Test\.QPSMTPD\.Marker\.UNOFFICIAL, \d+ ms$/)[0]?.level).toBe(LOGINFO);
  });

  test("action=add-header (the default) tags it", async () => {
    const { r, queued } = await deliver([clamscan()], infected());
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/\nX-Virus-Found: Yes\nX-Virus-Details: Test\.QPSMTPD\.Marker\.UNOFFICIAL$/);
  });

  test("clean mail passes with X-Virus-Checked", async () => {
    const { r, t, queued } = await deliver([clamscan("action=reject")], clean(), { config: { me: "mx.example.org" } });
    expect(r.code).toBe(250);
    expect(headerOf(queued)).toMatch(/\nX-Virus-Checked: Checked by ClamAV on mx\.example\.org$/);
    expect(logged(t, NAME, /^pass, clean, \d+ ms$/).length).toBe(1);
  });

  test("arguments also as qpsmtpd's leading path and as `key value` pairs", async () => {
    const { r } = await deliver([`virus/clamav /usr/bin/clamscan database ${db} action reject`], infected());
    expect(r.code).toBe(552);
  });

  test("clamdscan hands the file to clamd (with --config-file)", async () => {
    const conf = join(daemonDir("clamdscan-conf"), "clamd.conf");
    writeFileSync(conf, `LocalSocket ${clamd.socket}\n`);
    const plugin = `virus/clamav clamscan_path=/usr/bin/clamdscan clamd_conf=${conf} action=reject`;
    expect((await deliver([plugin], infected())).r.code).toBe(552);
    expect((await deliver([plugin], clean())).r.code).toBe(250);
  });

  test("a message above max_size is not scanned, with a log line", async () => {
    const { r, t, queued } = await deliver([clamscan("action=reject", "max_size=100")], infected());
    expect(r.code).toBe(250);
    expect(queued).not.toContain("X-Virus");
    expect(logged(t, NAME, /^Mail too large to scan \(\d+ vs 100\)$/)[0]?.level).toBe(LOGWARN);
  });

  test("bad arguments stop start-up", async () => {
    await expect(testRegistry({ plugins: ["virus/clamav action=delete"] })).rejects.toThrow(/add-header or reject/);
    await expect(testRegistry({ plugins: ["virus/clamav clamscan_path=clamscan;rm"] })).rejects.toThrow(/absolute path/);
    await expect(testRegistry({ plugins: ["virus/clamav tmp_dir=/nonexistent/dir"] })).rejects.toThrow(/not a directory/);
    await expect(testRegistry({ plugins: ["virus/clamav frobnicate=1"] })).rejects.toThrow(/unknown argument/);
  });

  test("qpsmtpd check: quiet for a scanner that runs, a warning for one that is missing", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [clamscan()] }))).toEqual([]);
    const missing = await pluginChecks(await testRegistry({ plugins: ["virus/clamav clamscan_path=/nonexistent/clamscan"] }));
    expect(missing).toEqual(["virus/clamav: /nonexistent/clamscan is not an executable file"]);
  });
});

describe("virus/clamav when the scanner fails (qpsmtpd's policy: defer)", () => {
  test("a missing scanner: 451; with declined_on_fail accepted, logged", async () => {
    const gone = await deliver(["virus/clamav clamscan_path=/nonexistent/clamscan"], infected());
    expect([gone.r.code, gone.r.status, gone.r.text]).toEqual([451, "4.3.0", "Unable to scan for viruses now, try again later"]);
    expect(logged(gone.t, NAME, /^ClamAV error, deferring the message: /)[0]?.level).toBe(LOGERROR);
    const open = await deliver(["virus/clamav clamscan_path=/nonexistent/clamscan declined_on_fail"], infected());
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /^ClamAV error, message not scanned: /).length).toBe(1);
  });

  test("a scanner that errs (exit 2): 451, or accepted with declined_on_fail", async () => {
    const failing = script('echo "ERROR: Can\'t open file or directory" >&2; exit 2');
    expect((await deliver([`virus/clamav clamscan_path=${failing}`], infected())).r.code).toBe(451);
    const open = await deliver([`virus/clamav clamscan_path=${failing} declined_on_fail`], infected());
    expect(open.r.code).toBe(250);
    expect(logged(open.t, NAME, /exited 2: ERROR: Can't open file/).length).toBe(1);
  });

  test("a scanner that hangs is killed at scan_timeout: 451, or accepted with declined_on_fail", async () => {
    const hangs = script("sleep 30");
    const started = Date.now();
    const held = await deliver([`virus/clamav clamscan_path=${hangs} scan_timeout=0.3`], infected());
    expect(held.r.code).toBe(451);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(logged(held.t, NAME, /was killed \(SIGKILL\)/).length).toBe(1);
    expect((await deliver([`virus/clamav clamscan_path=${hangs} scan_timeout=0.3 declined_on_fail`], infected())).r.code).toBe(250);
  });

  test("the scanner gets its arguments without a shell", async () => {
    const args = join(daemonDir("clamav-args"), "args");
    const echo = script(`printf '%s\\n' "$@" > ${args}; exit 0`);
    expect((await deliver([`virus/clamav clamscan_path=${echo} database=${db}`], clean())).r.code).toBe(250);
    const seen = (await Bun.file(args).text()).trim().split("\n");
    expect(seen.slice(0, 3)).toEqual(["--stdout", "--no-summary", `--database=${db}`]);
    expect(seen[3]).toMatch(/^\//); // the spool file, one argument
    expect(seen).toHaveLength(4);
  });
});
