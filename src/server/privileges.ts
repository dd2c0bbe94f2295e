/**
 * Dropping root after binding (`-u/--user`), as qpsmtpd-forkserver does.
 * @module
 */
import * as fs from "node:fs";

/**
 * Switches to `user` (name or uid) when running as root; a no-op when already that user.
 * `own` lists files (the pid file) handed to the user first, so it can remove them at exit.
 */
export function dropPrivileges(user: string, own: readonly string[] = []): void {
  const entry = fs.readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":"))
    .find((f) => f[0] === user || f[2] === user);
  if (!entry) throw new Error(`no such user: ${user}`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  if (process.getuid?.() === uid) return;
  if (process.getuid?.() !== 0) throw new Error(`cannot switch to user ${user}: not running as root`);
  if (!process.setgid || !process.setuid) throw new Error("this runtime cannot change user");
  for (const f of own) fs.chownSync(f, uid, gid);
  (process as { initgroups?: (u: string, g: number) => void }).initgroups?.(entry[0]!, gid);
  process.setgid(gid);
  process.setuid(uid);
}
