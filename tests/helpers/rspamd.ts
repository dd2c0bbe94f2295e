/**
 * A private rspamd (Debian `rspamd`) for the tests: Debian's rules, one normal worker on a
 * loopback port, no proxy or controller, console logging, state in a temp dir, DNS sent to the
 * given loopback server (an unreachable resolver makes each scan wait on time-outs). The TLD list
 * is cut to a few names: building the full one is 15 of the 17 seconds rspamd takes to start
 * here. GTUBE gives `reject`.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonDir, freePort, type RunningDaemon, startDaemon } from "./daemon.ts";

/** The GTUBE variants rspamd knows (with enable_test_patterns): its action for each. */
export const GTUBE_REJECT = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
export const GTUBE_ADD_HEADER = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
export const GTUBE_REWRITE_SUBJECT = "ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
/** The envelope sender rspamd answers `soft reject` for (a multimap and force_actions rule). */
export const SOFT_REJECT_SENDER = "later@example.net";

export interface Rspamd extends RunningDaemon {
  readonly port: number;
}

export async function startRspamd(opts: { dnsPort: number }): Promise<Rspamd> {
  const dir = daemonDir("rspamd");
  for (const sub of ["local.d", "override.d", "db", "run"]) {
    mkdirSync(join(dir, sub));
    chmodSync(join(dir, sub), 0o777); // rspamd runs as nobody and writes its state here
  }
  const port = await freePort();
  const files: Record<string, string> = {
    "local.d/worker-normal.inc": `bind_socket = "127.0.0.1:${port}";\ncount = 1;\n`,
    "override.d/worker-proxy.inc": "enabled = false;\n",
    "override.d/worker-controller.inc": "enabled = false;\n",
    "override.d/worker-fuzzy.inc": "enabled = false;\n",
    "local.d/logging.inc": 'type = "console";\nlevel = "warning";\n',
    "local.d/options.inc": `dns { nameserver = ["127.0.0.1:${opts.dnsPort}"]; timeout = 1s; retransmits = 1; }\n` +
      `url_tld = "${join(dir, "tlds.dat")}";\n` +
      "enable_test_patterns = true;\n", // the YJS/ZJS GTUBE variants: add header, rewrite subject
    "tlds.dat": "com\norg\nnet\nexample\ntest\ninvalid\n",
    // Mail from SOFT_REJECT_SENDER gets `soft reject` (no GTUBE variant gives it).
    "local.d/multimap.conf": `QPSMTPD_SOFT { type = "from"; filter = "email:addr"; map = "${join(dir, "soft.map")}"; score = 0.0; }\n`,
    "soft.map": `${SOFT_REJECT_SENDER}\n`,
    "local.d/force_actions.conf":
      'rules { QPSMTPD_SOFT { action = "soft reject"; expression = "QPSMTPD_SOFT"; message = "Come back later"; } }\n',
    // rspamd's milter-style header changes in every answer.
    "local.d/milter_headers.conf": 'use = ["x-spamd-result", "x-rspamd-server"]; skip_local = false; skip_authenticated = false;\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const d = await startDaemon(
    "rspamd",
    [
      "rspamd",
      "-f",
      ...(process.getuid?.() === 0 ? ["-u", "nobody", "-g", "nogroup"] : []), // root must name a user
      "-c",
      "/etc/rspamd/rspamd.conf",
      `--var=LOCAL_CONFDIR=${dir}`,
      `--var=DBDIR=${join(dir, "db")}`,
      `--var=RUNDIR=${join(dir, "run")}`,
    ],
    [{ port }],
    { cwd: dir, ms: 90_000 },
  );
  return Object.assign(d, { port });
}
