/**
 * A private ClamAV `clamd` (Debian `clamav-daemon`) for the tests, on a two-signature local
 * database instead of the official one (no freshclam; it loads in a second, in 16 MB): an `.hdb`
 * hash of the 68-byte EICAR file and an `.ndb` body signature for VIRUS_MARKER. Test bodies use
 * the marker: EICAR inline in a text body is not matched by a whole-file hash.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonDir, freePort, type RunningDaemon, startDaemon } from "./daemon.ts";

/** A body containing this is `Test.QPSMTPD.Marker.UNOFFICIAL` to clamd. */
export const VIRUS_MARKER = "QPSMTPD-TEST-VIRUS-MARKER";
export const VIRUS_NAME = "Test.QPSMTPD.Marker.UNOFFICIAL";
const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

export interface Clamd extends RunningDaemon {
  readonly port: number;
  /** The unix socket. */
  readonly socket: string;
  /** The signature database directory (`clamscan --database`). */
  readonly db: string;
}

/** The two-line database in `dir`. */
export function writeSignatures(dir: string): void {
  const md5 = createHash("md5").update(EICAR).digest("hex");
  writeFileSync(join(dir, "test.hdb"), `${md5}:${EICAR.length}:Test.EICAR.Local\n`);
  writeFileSync(join(dir, "test.ndb"), `Test.QPSMTPD.Marker:0:*:${Buffer.from(VIRUS_MARKER).toString("hex")}\n`);
}

/** `streamMaxLength`: clamd's StreamMaxLength, what INSTREAM takes before it refuses (default 10M). */
export async function startClamd(opts: { streamMaxLength?: string } = {}): Promise<Clamd> {
  const dir = daemonDir("clamd");
  const db = join(dir, "db");
  mkdirSync(db, { mode: 0o755 });
  writeSignatures(db);
  const port = await freePort();
  const socket = join(dir, "clamd.sock");
  const conf = join(dir, "clamd.conf");
  writeFileSync(
    conf,
    [
      "Foreground yes",
      `DatabaseDirectory ${db}`,
      `TCPSocket ${port}`,
      "TCPAddr 127.0.0.1",
      `LocalSocket ${socket}`,
      "LocalSocketMode 666",
      `StreamMaxLength ${opts.streamMaxLength ?? "10M"}`,
      `PidFile ${join(dir, "clamd.pid")}`,
      `LogFile ${join(dir, "clamd.log")}`,
      "",
    ].join("\n"),
  );
  const d = await startDaemon("clamd", ["clamd", "-c", conf], [{ port }, { path: socket }], { cwd: dir });
  return Object.assign(d, { port, socket, db });
}
