/**
 * auth/auth_ldap_bind against a real OpenLDAP slapd (Debian's slapd) run privately: search then
 * bind, anonymous and with a service account, LDAPS and StartTLS, user names with filter
 * metacharacters (RFC 4515 escaping), passwords that must never be sent, 100 concurrent attempts
 * while the directory is silent, and the failure modes (down, silent, hanging up: fault-injecting
 * fake peers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestSession } from "qpsmtpd/testing";
import { escapeFilterValue } from "../../../plugins/auth/auth_ldap_bind.ts";
import { pluginChecks } from "../../../src/core/checks.ts";
import { testRegistry } from "../../../src/testing/registry.ts";
import { authLogin, authPlain, authSession, logsMention, tryPlain } from "../../helpers/auth.ts";
import { fakePeer, refusingPort } from "../../helpers/fake_peers.ts";
import { type Slapd, startSlapd, SUFFIX } from "../../helpers/slapd.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const person = (dn: string, uid: string, password?: string, extra = "") =>
  `dn: ${dn}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\n${
    password === undefined ? "" : `userPassword:: ${Buffer.from(password).toString("base64")}\n`
  }${extra}\n`;
const ou = (name: string) => `dn: ou=${name},${SUFFIX}\nobjectClass: organizationalUnit\nou: ${name}\n\n`;

const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n`,
  ou("people"),
  ou("staff"),
  ou("more"),
  person(`uid=alice,ou=people,${SUFFIX}`, "alice", "s3cret-pw", "mail: alice@example.org\n"),
  person(`uid=umlaut,ou=people,${SUFFIX}`, "umlaut", "pässwörd"),
  // A user name made of filter metacharacters, and a DN holding them.
  person(`uid=o*)(uid\\3D*,ou=people,${SUFFIX}`, "o*)(uid=*", "odd-pw"),
  person(`uid=twin,ou=people,${SUFFIX}`, "twin", "twin-pw"),
  person(`uid=twin,ou=more,${SUFFIX}`, "twin", "twin-pw"),
  person(`uid=nopw,ou=people,${SUFFIX}`, "nopw"),
  person(`uid=carol,ou=staff,${SUFFIX}`, "carol", "carols-pw"),
  `dn: cn=reader,${SUFFIX}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: reader-pw\n\n`,
].join("");

// ou=staff is searchable only after a bind (ldap_bind_dn); passwords are only for binding.
const ACL = [
  "access to attrs=userPassword by anonymous auth by self write by * none",
  `access to dn.subtree="ou=staff,${SUFFIX}" by users read by anonymous auth`,
  "access to * by * read",
].join("\n");

let slapd: Slapd;
beforeAll(async () => {
  slapd = await startSlapd(LDIF, ACL);
});
afterAll(async () => {
  await slapd?.stop();
});

const ldap = (extra = "") => `auth/auth_ldap_bind ldap_port ${slapd.port} ldap_base ${SUFFIX} ${extra}`.trim();

describe("escapeFilterValue (RFC 4515)", () => {
  test("escapes *, (, ), \\ and NUL; leaves the rest", () => {
    expect(escapeFilterValue("*)(uid=*")).toBe("\\2a\\29\\28uid=\\2a");
    expect(escapeFilterValue("a\\b\0c")).toBe("a\\5cb\\00c");
    expect(escapeFilterValue("jörg.o'hara")).toBe("jörg.o'hara");
  });
});

describe("auth/auth_ldap_bind with slapd", () => {
  test("search then bind: the right password 235, a wrong one 535; the password never logged", async () => {
    const ok = await tryPlain(ldap(), "alice", "s3cret-pw");
    expect(ok.code).toBe(235);
    expect(logsMention(ok.t, "s3cret-pw")).toBe(false);
    const wrong = await tryPlain(ldap(), "alice", "s3cret-pX");
    expect(wrong.code).toBe(535);
    expect(logsMention(wrong.t, "s3cret-pX")).toBe(false);
  });

  test("an unknown user is left to the next plugin (535 when none knows it)", async () => {
    const { code, t } = await tryPlain(ldap(), "mallory", "s3cret-pw");
    expect(code).toBe(535);
    expect(t.logs.some((l) => l.message.includes("no entry with uid=mallory"))).toBe(true);
  });

  test("user@domain looks up the local part (qpsmtpd's); ldap_user full looks up the whole name", async () => {
    expect((await tryPlain(ldap(), "Alice@example.org", "s3cret-pw")).code).toBe(235);
    expect((await tryPlain(ldap("ldap_auth_filter_attr mail ldap_user full"), "alice@example.org", "s3cret-pw")).code).toBe(235);
  });

  test("filter metacharacters in the user name are escaped: they match only themselves", async () => {
    // Unescaped, `ali*` would find alice and bind with her password; the others would widen
    // the filter or break it (a 454).
    expect((await tryPlain(ldap(), "ali*", "s3cret-pw")).code).toBe(535);
    expect((await tryPlain(ldap(), "*", "s3cret-pw")).code).toBe(535);
    expect((await tryPlain(ldap(), "*)(uid=*", "s3cret-pw")).code).toBe(535);
    expect((await tryPlain(ldap(), "alice)(uid=*", "s3cret-pw")).code).toBe(535);
    // The user whose name is made of metacharacters is found, and its DN (with them) binds.
    expect((await tryPlain(ldap(), "o*)(uid=*", "odd-pw")).code).toBe(235);
    expect((await tryPlain(ldap(), "o*)(uid=*", "s3cret-pw")).code).toBe(535);
  });

  test("two entries for one name: refused, not guessed", async () => {
    const { code, t } = await tryPlain(ldap(), "twin", "twin-pw");
    expect(code).toBe(535);
    expect(t.logs.some((l) => l.message.includes("more than one entry"))).toBe(true);
  });

  test("an empty password is never sent (it would be an anonymous bind)", async () => {
    const t = await authSession(ldap());
    expect(await authLogin(t, "alice", "")).toBe(535);
    expect(await authLogin(t, "nopw", "")).toBe(535);
    expect(t.logs.some((l) => l.message.includes("empty password"))).toBe(true);
  });

  test("UTF-8 passwords bind; a NUL or non-UTF-8 bytes are refused without asking", async () => {
    expect((await tryPlain(ldap(), "umlaut", "pässwörd")).code).toBe(235);
    const t = await authSession(ldap());
    expect(await authLogin(t, "alice", Buffer.from("s3cret-pw\0x"))).toBe(535);
    // Not UTF-8: the core refuses the credentials (501) before any plugin sees them.
    expect(await authPlain(t, "umlaut", Buffer.from("p\xe4ssw\xf6rd", "latin1"))).toBe(501);
  });

  test("ou=staff needs the service account: not found anonymously, 235 with ldap_bind_dn", async () => {
    expect((await tryPlain(ldap(), "carol", "carols-pw")).code).toBe(535);
    const bound = ldap(`ldap_bind_dn cn=reader,${SUFFIX} ldap_bind_pwd reader-pw`);
    expect((await tryPlain(bound, "carol", "carols-pw")).code).toBe(235);
  });

  test("the service account refused: 454, and its password is not logged", async () => {
    const { code, t } = await tryPlain(ldap(`ldap_bind_dn cn=reader,${SUFFIX} ldap_bind_pwd wrong-reader-pw`), "carol", "carols-pw");
    expect(code).toBe(454);
    expect(t.logs.some((l) => l.message.includes("refused ldap_bind_dn"))).toBe(true);
    expect(logsMention(t, "wrong-reader-pw")).toBe(false);
  });

  test("the settings can come from config/ldap", async () => {
    const config = { ldap: [`ldap_port ${slapd.port}`, `ldap_base ${SUFFIX}`] };
    expect((await tryPlain("auth/auth_ldap_bind", "alice", "s3cret-pw", { config })).code).toBe(235);
  });

  test("LDAPS and StartTLS with the server's certificate trusted: 235", async () => {
    const ldaps = `auth/auth_ldap_bind ldap_tls ldaps ldap_port ${slapd.tlsPort} ldap_base ${SUFFIX} ldap_ca ${slapd.caFile}`;
    expect((await tryPlain(ldaps, "alice", "s3cret-pw")).code).toBe(235);
    expect((await tryPlain(ldap(`ldap_tls starttls ldap_ca ${slapd.caFile}`), "alice", "s3cret-pw")).code).toBe(235);
  });

  test("an untrusted certificate: 454, the password not sent", async () => {
    const ldaps = `auth/auth_ldap_bind ldap_tls ldaps ldap_port ${slapd.tlsPort} ldap_base ${SUFFIX}`;
    const { code, t } = await tryPlain(ldaps, "alice", "s3cret-pw");
    expect(code).toBe(454);
    expect(t.logs.some((l) => /certificate/i.test(l.message))).toBe(true);
    expect((await tryPlain(ldap("ldap_tls starttls"), "alice", "s3cret-pw")).code).toBe(454);
  });

  test("check() is quiet when the directory answers, and warns when it is down", async () => {
    expect(await pluginChecks(await testRegistry({ plugins: [ldap()] }))).toEqual([]);
    const down = await pluginChecks(
      await testRegistry({ plugins: [`auth/auth_ldap_bind ldap_port ${await refusingPort()} ldap_base ${SUFFIX}`] }),
    );
    expect(down).toHaveLength(1);
    expect(down[0]).toContain("cannot be searched");
    expect(down[0]).toContain("ECONNREFUSED");
  });
});

describe("auth/auth_ldap_bind failure modes", () => {
  test("the directory down: 454", async () => {
    const { code, t } = await tryPlain(`auth/auth_ldap_bind ldap_port ${await refusingPort()} ldap_base ${SUFFIX}`, "alice", "x");
    expect(code).toBe(454);
    expect(t.replies.at(-1)?.text).toContain("Temporary authentication failure");
  });

  test("a directory that accepts and never answers: 454 at ldap_timeout", async () => {
    const peer = await fakePeer();
    try {
      expect((await tryPlain(`auth/auth_ldap_bind ldap_port ${peer.port} ldap_base ${SUFFIX} ldap_timeout 0.3`, "alice", "x")).code).toBe(
        454,
      );
    } finally {
      await peer.close();
    }
  });

  test("a directory that hangs up at the first request: 454, never 235", async () => {
    const peer = await fakePeer((s) => s.once("data", () => s.destroy()));
    try {
      expect((await tryPlain(`auth/auth_ldap_bind ldap_port ${peer.port} ldap_base ${SUFFIX} ldap_timeout 2`, "alice", "x")).code).toBe(
        454,
      );
    } finally {
      await peer.close();
    }
  });

  test("100 concurrent attempts against a silent directory: each 454, while another directory's user is served at once", async () => {
    const peer = await fakePeer();
    try {
      const silent = `auth/auth_ldap_bind ldap_port ${peer.port} ldap_base ${SUFFIX} ldap_timeout 2`;
      let settled = 0;
      const stuck = Array.from({ length: 100 }, () => tryPlain(silent, "alice", "s3cret-pw").finally(() => settled++));
      while (peer.accepted < 100) await new Promise((r) => setTimeout(r, 10));
      expect((await tryPlain(ldap(), "alice", "s3cret-pw")).code).toBe(235);
      expect(settled).toBe(0);
      expect((await Promise.all(stuck)).filter((s) => s.code === 454)).toHaveLength(100);
    } finally {
      await peer.close();
    }
  }, 30_000);

  test("bad settings stop start-up", async () => {
    for (
      const line of [
        "auth/auth_ldap_bind",
        `auth/auth_ldap_bind ldap_base ${SUFFIX} ldap_auth_filter_attr uid)(x`,
        `auth/auth_ldap_bind ldap_base ${SUFFIX} ldap_bsae x`,
        `auth/auth_ldap_bind ldap_base ${SUFFIX} ldap_bind_dn cn=x`,
        `auth/auth_ldap_bind ldap_base ${SUFFIX} ldap_tls yes`,
      ]
    ) {
      await expect(TestSession.start({ plugins: [line] })).rejects.toThrow();
    }
  });
});

describe("auth/auth_ldap_bind arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/auth_ldap_bind ldap_base dc=example,dc=org ldap_timout 2", "ldap_timout");
  });
});
