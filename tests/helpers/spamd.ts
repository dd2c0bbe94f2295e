/**
 * A private SpamAssassin `spamd` (Debian `spamd`) for the tests: the rules the `spamassassin`
 * package ships (no sa-update), no network tests (`-L`), a loopback port and a unix socket in
 * its own temp dir, no user config. GTUBE scores 1000; a plain message about 0.
 */
import { copyFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { daemonDir, freePort, type RunningDaemon, startDaemon } from "./daemon.ts";

export interface Spamd extends RunningDaemon {
  readonly port: number;
  /** The unix socket. */
  readonly socket: string;
}

/** The GTUBE line: any SpamAssassin scores it 1000. */
export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

export async function startSpamd(opts: { children?: number } = {}): Promise<Spamd> {
  const dir = daemonDir("spamd");
  // The .pre files load the plugins (Check among them); without them spamd cannot scan.
  for (const f of readdirSync("/etc/spamassassin")) if (f.endsWith(".pre")) copyFileSync(join("/etc/spamassassin", f), join(dir, f));
  const port = await freePort();
  const socket = join(dir, "spamd.sock");
  const children = String(opts.children ?? 2);
  const d = await startDaemon(
    "spamd",
    [
      "spamd",
      "-L", // no network tests: nothing leaves the machine
      "-x", // no per-user config
      `--listen=127.0.0.1:${port}`,
      `--listen=${socket}`,
      "--socketmode=0666",
      "-A",
      "127.0.0.1",
      `--siteconfigpath=${dir}`,
      `--pidfile=${join(dir, "spamd.pid")}`,
      `--max-children=${children}`,
      `--min-children=${children}`,
      ...(process.getuid?.() === 0 ? ["-u", "nobody"] : []), // spamd refuses to run as root
      "-s",
      "stderr",
    ],
    [{ port }, { path: socket }],
    { cwd: dir },
  );
  return Object.assign(d, { port, socket });
}
