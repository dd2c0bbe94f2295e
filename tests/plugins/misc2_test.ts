/** auth/auth_checkpassword (a real checkpassword program), loadcheck, rcpt_map. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestSession } from "../../src/testing/harness.ts";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

function script(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "qpscript-"));
  const f = join(dir, "prog");
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
}

describe("auth/auth_checkpassword", () => {
  // The checkpassword protocol: user NUL password NUL timestamp NUL on fd 3; exec the argument on success.
  const checkpw = script(`data=$(tr '\\0' '\\n' <&3)
user=$(printf '%s\\n' "$data" | sed -n 1p)
pass=$(printf '%s\\n' "$data" | sed -n 2p)
ts=$(printf '%s\\n' "$data" | sed -n 3p)
case "$ts" in ''|*[!0-9]*) exit 2;; esac
[ "$user" = "u@example.org" ] && [ "$pass" = "s3 cret" ] && exec "$@"
exit 1`);

  test("PLAIN and LOGIN through the program; a wrong password is 535", async () => {
    const t = await TestSession.start({ plugins: [`auth/auth_checkpassword checkpw ${checkpw} true /bin/true`] });
    expect((await t.command("EHLO c")).lines).toContain("AUTH PLAIN LOGIN");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0wrong")}`)).code).toBe(535);
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0s3 cret")}`)).code).toBe(235);
    const l = await TestSession.start({ plugins: [`auth/auth_checkpassword checkpw ${checkpw} true /bin/true`] });
    await l.command("EHLO c");
    await l.command("AUTH LOGIN");
    await l.command(b64("u@example.org"));
    expect((await l.command(b64("s3 cret"))).code).toBe(235);
  });

  test("the programs may come from smtpauth-checkpassword", async () => {
    const t = await TestSession.start({ plugins: ["auth/auth_checkpassword"], config: { "smtpauth-checkpassword": `${checkpw} /bin/true` } });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0s3 cret")}`)).code).toBe(235);
  });
});

describe("loadcheck", () => {
  test("defers connections above max_load, reading the uptime program", async () => {
    const busy = script('echo " 10:00:00 up 3 days,  2 users,  load average: 9.50, 8.00, 7.00"');
    const t = await TestSession.start({ plugins: [`loadcheck max_load 7 uptime ${busy}`] });
    expect(t.greeting?.code).toBe(450);
    expect(t.greeting?.text).toBe("Server load too high (9.5), please try again later");
    expect(t.closed).toBe(true);
    const calm = script('echo "load average: 0.50, 0.40, 0.30"');
    expect((await TestSession.start({ plugins: [`loadcheck max_load 7 uptime ${calm}`] })).greeting?.code).toBe(220);
  });
});

describe("rcpt_map", () => {
  test("known addresses get their code, unknown ones the default; other domains pass by", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qpmap-"));
    const file = join(dir, "map");
    writeFileSync(file, "# users\nalice@example.org OK\nbob DENYSOFT mailbox full\nbroken line\n");
    const t = await TestSession.start({ plugins: [`rcpt_map domain example.org file ${file} default DENY=No_such_user_here`] });
    await t.command("EHLO c");
    await t.command("MAIL FROM:<a@example.net>");
    expect((await t.command("RCPT TO:<Alice@example.org>")).code).toBe(250);
    expect(await t.command("RCPT TO:<bob@example.org>")).toMatchObject({ code: 450, text: "mailbox full" });
    expect(await t.command("RCPT TO:<carol@example.org>")).toMatchObject({ code: 550, text: "No such user here" });
    expect((await t.command("RCPT TO:<carol@other.example>")).text).toBe("No plugin decided if relaying is allowed");
    writeFileSync(file, "carol OK\n");
    const { utimesSync } = await import("node:fs");
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect((await t.command("RCPT TO:<carol@example.org>")).code).toBe(250);
  });
});
