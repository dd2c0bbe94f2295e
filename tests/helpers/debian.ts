/**
 * A copy of Debian's qpsmtpd 0.94 config directory (tests/fixtures/debian-qpsmtpd) in a temp
 * dir. `moved` points its absolute paths at temp dirs, as an admin moving it would; without it
 * the copy still names /etc/qpsmtpd, /var/spool/qpsmtpd and /usr/share/qpsmtpd/plugins.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const DEBIAN_FIXTURE = resolve(import.meta.dir, "../fixtures/debian-qpsmtpd");

export interface DebianCopy {
  /** The config directory (Debian's /etc/qpsmtpd). */
  readonly dir: string;
  readonly spool: string;
  /** The file logging/file writes (Debian's /var/log/qpsmtpd/qpsmtpd.log). */
  readonly log: string;
  /** The extension-less Perl plugins (Debian's /usr/share/qpsmtpd/plugins). */
  readonly perlPlugins: string;
}

export function debianCopy(moved = true): DebianCopy {
  const root = mkdtempSync(join(tmpdir(), "qpdebian-"));
  const dir = join(root, "etc", "qpsmtpd");
  cpSync(join(DEBIAN_FIXTURE, "etc", "qpsmtpd"), dir, { recursive: true });
  const perlPlugins = join(root, "usr", "share", "qpsmtpd", "plugins");
  cpSync(join(DEBIAN_FIXTURE, "usr", "share", "qpsmtpd", "plugins"), perlPlugins, { recursive: true });
  const spool = join(root, "var", "spool", "qpsmtpd");
  const log = join(root, "var", "log", "qpsmtpd", "qpsmtpd.log");
  if (moved) {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      const text = readFileSync(p, "utf8")
        .replaceAll("/etc/qpsmtpd", dir)
        .replaceAll("/usr/share/qpsmtpd/plugins", perlPlugins)
        .replaceAll("/var/spool/qpsmtpd", spool)
        .replaceAll("/var/log/qpsmtpd", join(root, "var", "log", "qpsmtpd"));
      writeFileSync(p, text);
    }
  }
  return { dir, spool, log, perlPlugins };
}
