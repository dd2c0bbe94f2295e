/**
 * A private Exim for the exim-bsmtp tests. Debian's exim4 packages conflict with Postfix (both
 * are the mail-transport-agent), so the binary comes from the .deb, fetched with `apt-get
 * download exim4-daemon-light` and unpacked with `dpkg-deb -x` into a temp dir, once per run.
 * It runs with `-C` and a config whose spool, log and Maildir are the test's own, delivering at
 * once (`-odi`) into one Maildir with Envelope-to and Return-path added.
 *
 * Debian's binary looks up the user `Debian-exim` before reading any config, and that user only
 * exists once exim4-base is installed. So the wrapper (the `exim_path` the plugin runs) enters a
 * private mount namespace where /etc/passwd and /etc/group are copies with that user added
 * (as `nobody`). That needs root: without it the tests are skipped.
 */
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRoot, sharedTempDir } from "./daemons.ts";

const NOBODY = 65534;

/** The unpacked exim4 binary, fetched once per test run (TMPDIR is per run under `make test`). */
export function eximBinary(): string {
  const root = join(tmpdir(), "qpsmtpd-exim-deb");
  const bin = join(root, "root/usr/sbin/exim4");
  if (existsSync(bin)) return bin;
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  execFileSync("apt-get", ["download", "-q", "exim4-daemon-light"], { cwd: root, stdio: "pipe" });
  const deb = readdirSync(root).find((f) => f.endsWith(".deb"));
  if (!deb) throw new Error("apt-get download exim4-daemon-light fetched nothing");
  execFileSync("dpkg-deb", ["-x", join(root, deb), join(root, "root")], { stdio: "pipe" });
  return bin;
}

export interface EximOptions {
  /** More lines at the top of the config (e.g. `check_spool_space = 100000G`). */
  readonly main?: string;
}

export interface Exim {
  /** The wrapper to give the plugin as `exim_path`. */
  readonly path: string;
  /** Messages delivered so far (latin1), oldest first. */
  messages(): string[];
  /** Exim's main log. */
  log(): string;
  /** Rewrites the config (Exim reads it on every run). */
  configure(opts: EximOptions): void;
  remove(): void;
}

export const eximUsable = isRoot;

export function startExim(opts: EximOptions = {}): Exim {
  const bin = eximBinary();
  const dir = sharedTempDir("exim-");
  for (const d of ["spool", "log", "mail"]) {
    mkdirSync(join(dir, d));
    chownSync(join(dir, d), NOBODY, NOBODY);
  }
  copyFileSync("/etc/passwd", join(dir, "passwd"));
  appendFileSync(join(dir, "passwd"), `Debian-exim:x:${NOBODY}:${NOBODY}::${dir}:/usr/sbin/nologin\n`);
  copyFileSync("/etc/group", join(dir, "group"));
  appendFileSync(join(dir, "group"), `Debian-exim:x:${NOBODY}:\n`);
  const conf = join(dir, "exim.conf");
  const configure = (o: EximOptions): void =>
    writeFileSync(
      conf,
      `exim_path = ${bin}
${o.main ?? ""}
primary_hostname = mx.example.org
spool_directory = ${dir}/spool
log_file_path = ${dir}/log/%s
keep_environment =
trusted_users = root
acl_not_smtp = acl_local
begin acl
acl_local:
  deny condition = \${if match{$h_subject:}{reject}}
       message = content refused by policy
  accept
begin routers
all:
  driver = accept
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = ${dir}/mail/Maildir
  maildir_format
  envelope_to_add
  return_path_add
  user = Debian-exim
`,
    );
  configure(opts);
  const wrapper = join(dir, "exim");
  writeFileSync(
    wrapper,
    `#!/bin/sh
# Exim with its own config, in a mount namespace where the Debian-exim user exists.
exec unshare -m sh -c 'mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group && b="$1" && shift && exec "$b" -C "$0/exim.conf" -odi "$@"' "${dir}" "${bin}" "$@"
`,
  );
  chmodSync(wrapper, 0o755);
  const maildir = join(dir, "mail/Maildir/new");
  return {
    path: wrapper,
    messages: () => (existsSync(maildir) ? readdirSync(maildir).sort().map((f) => readFileSync(join(maildir, f), "latin1")) : []),
    log: () => (existsSync(join(dir, "log/main")) ? readFileSync(join(dir, "log/main"), "utf8") : ""),
    configure,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
