/**
 * A private Dovecot (Debian's dovecot-core, -lmtpd, -imapd) for the LMTP, IMAP and Dovecot-auth
 * plugin tests: its own config, users, Maildirs and sockets in a temp dir, LMTP, IMAP, IMAPS and
 * the auth service on free loopback ports (and unix sockets), stopped by pid.
 *
 * As root it runs its helpers as the `dovecot`/`dovenull` users and delivers as `nobody`; as
 * anyone else everything runs as that user.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { Foreground, freePort, isRoot, sharedTempDir, waitForListeners } from "./daemons.ts";

const TLS_DIR = resolve(import.meta.dir, "../fixtures/tls");

export interface DovecotUser {
  readonly name: string;
  readonly password: string;
  /** Extra userdb fields, e.g. `userdb_quota_rule=*:storage=1B`. */
  readonly extra?: string;
}

export interface DovecotOptions {
  readonly users: readonly DovecotUser[];
  /** Seconds before a FAIL answer (Dovecot's default is 2). @default 0 */
  readonly authFailureDelay?: number;
  /** More dovecot.conf lines. */
  readonly extraConfig?: string;
}

export interface Dovecot {
  readonly dir: string;
  readonly lmtpPort: number;
  readonly lmtpSocket: string;
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly authPort: number;
  readonly authSocket: string;
  /** The CA that signed the server certificate (it is self-signed). */
  readonly caFile: string;
  /** The messages in a user's Maildir (new/ and cur/), oldest first by name. */
  messages(user: string): string[];
  log(): string;
  stop(): Promise<void>;
}

export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  const dir = sharedTempDir("dovecot-");
  const [lmtpPort, imapPort, imapsPort, authPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const mail = join(dir, "mail");
  mkdirSync(mail);
  chmodSync(mail, 0o777); // the mailboxes belong to nobody (or the user running the tests)
  const me = userInfo();
  const [uid, gid] = isRoot ? [65534, 65534] : [me.uid, me.gid];
  const passwd = join(dir, "passwd");
  writeFileSync(
    passwd,
    opts.users.map((u) => `${u.name}:{PLAIN}${u.password}:${uid}:${gid}::${join(mail, u.name)}::${u.extra ?? ""}\n`).join(""),
    { mode: 0o644 },
  );
  copyFileSync(join(TLS_DIR, "server.crt"), join(dir, "cert.pem"));
  copyFileSync(join(TLS_DIR, "server.key"), join(dir, "key.pem"));
  const lmtpSocket = join(dir, "lmtp.sock");
  const authSocket = join(dir, "auth.sock");
  const internal = isRoot ? "dovecot" : me.username;
  const login = isRoot ? "dovenull" : me.username;
  const conf = `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = lmtp imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
default_internal_user = ${internal}
default_login_user = ${login}
auth_failure_delay = ${opts.authFailureDelay ?? 0} secs
auth_mechanisms = plain login
disable_plaintext_auth = no
# The plugins connect from loopback: Dovecot then believes the client address they pass on.
login_trusted_networks = 127.0.0.0/8
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%n ${passwd}
}
mail_location = maildir:~/Maildir
mail_plugins = quota
plugin {
  quota = count:User quota
  quota_rule = *:storage=1G
  quota_vsizes = yes
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
  unix_listener ${lmtpSocket} {
    mode = 0666
  }
}
service imap-login {
  # High-performance mode: a few login processes serve every client (no fork per connection).
  service_count = 0
  process_min_avail = 1
  client_limit = 1000
  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = ${imapsPort}
    ssl = yes
  }
}
service auth {
  inet_listener auth-client {
    address = 127.0.0.1
    port = ${authPort}
  }
  unix_listener ${authSocket} {
    mode = 0666
  }
}
${opts.extraConfig ?? ""}
`;
  writeFileSync(join(dir, "dovecot.conf"), conf);
  const proc = new Foreground("dovecot", ["-F", "-c", join(dir, "dovecot.conf")]);
  const log = (): string => (existsSync(join(dir, "dovecot.log")) ? readFileSync(join(dir, "dovecot.log"), "utf8") : "");
  try {
    await waitForListeners(
      [
        { host: "127.0.0.1", port: lmtpPort },
        { host: "127.0.0.1", port: imapPort },
        { host: "127.0.0.1", port: imapsPort },
        { host: "127.0.0.1", port: authPort },
        { path: lmtpSocket },
        { path: authSocket },
      ],
      "dovecot",
      () => proc.running,
    );
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}\n${proc.output}\n${log()}`);
  }
  return {
    dir,
    lmtpPort,
    lmtpSocket,
    imapPort,
    imapsPort,
    authPort,
    authSocket,
    caFile: join(dir, "cert.pem"),
    messages: (user) => {
      const out: string[] = [];
      for (const sub of ["new", "cur"]) {
        const d = join(mail, user, "Maildir", sub);
        if (!existsSync(d)) continue;
        for (const f of readdirSync(d).sort()) out.push(readFileSync(join(d, f), "latin1"));
      }
      return out;
    },
    log,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
