/** auth/auth_checkpassword, with a real checkpassword program. */
import { describe, expect, test } from "bun:test";
import { TestSession } from "../../../src/testing/harness.ts";
import { script } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

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
    const t = await TestSession.start({
      plugins: ["auth/auth_checkpassword"],
      config: { "smtpauth-checkpassword": `${checkpw} /bin/true` },
    });
    await t.command("EHLO c");
    expect((await t.command(`AUTH PLAIN ${b64("\0u@example.org\0s3 cret")}`)).code).toBe(235);
  });
});

describe("auth/auth_checkpassword arguments", () => {
  test("a misspelt key stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("auth/auth_checkpassword chekpw /bin/false true /bin/true", "chekpw");
  });
});
