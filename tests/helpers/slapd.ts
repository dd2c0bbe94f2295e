/**
 * A private OpenLDAP slapd (Debian's slapd) for the auth_ldap_bind tests: an mdb database in a
 * temp dir loaded from LDIF with slapadd, `ldap://` and `ldaps://` on free loopback ports
 * (StartTLS on the first), the test certificate, stopped by pid.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execFileSync } from "node:child_process";
import { Foreground, freePort, sharedTempDir, waitForListeners } from "./daemons.ts";

const TLS_DIR = resolve(import.meta.dir, "../fixtures/tls");

export const SUFFIX = "dc=example,dc=org";
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PW = "admin-pw";

export interface Slapd {
  readonly port: number;
  readonly tlsPort: number;
  /** The CA that signed the server certificate (it is self-signed). */
  readonly caFile: string;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts slapd with `ldif` (entries under dc=example,dc=org, the suffix entry included) and
 * `acl` (slapd.conf `access` lines; default: anyone may search, passwords only for binding).
 */
export async function startSlapd(ldif: string, acl?: string): Promise<Slapd> {
  const dir = sharedTempDir("slapd-");
  const [port, tlsPort] = [await freePort(), await freePort()];
  mkdirSync(join(dir, "db"));
  copyFileSync(join(TLS_DIR, "server.crt"), join(dir, "cert.pem"));
  copyFileSync(join(TLS_DIR, "server.key"), join(dir, "key.pem"));
  const conf = join(dir, "slapd.conf");
  writeFileSync(
    conf,
    `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile ${dir}/slapd.pid
TLSCertificateFile ${dir}/cert.pem
TLSCertificateKeyFile ${dir}/key.pem
database mdb
suffix "${SUFFIX}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PW}
directory ${dir}/db
${acl ?? "access to attrs=userPassword by anonymous auth by self write by * none\naccess to * by * read"}
`,
  );
  writeFileSync(join(dir, "seed.ldif"), ldif);
  execFileSync("slapadd", ["-f", conf, "-l", join(dir, "seed.ldif")], { stdio: "pipe" });
  // -d 0: stay in the foreground (so the pid is ours) and log nothing but failures.
  const proc = new Foreground("slapd", ["-f", conf, "-h", `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${tlsPort}/`, "-d", "0"]);
  try {
    await waitForListeners([{ host: "127.0.0.1", port }, { host: "127.0.0.1", port: tlsPort }], "slapd", () => proc.running);
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}\n${proc.output}`);
  }
  return {
    port,
    tlsPort,
    caFile: join(dir, "cert.pem"),
    log: () => proc.output,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
