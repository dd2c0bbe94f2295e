/**
 * `qpsmtpd new-plugin NAME [DIR]`: writes a plugin and its test, ready to edit.
 * @module
 */
import * as fs from "node:fs";
import { basename, join } from "node:path";

export function pluginTemplate(name: string): string {
  return `/**
 * ${name}: what it does, in one sentence.
 *
 * Hooks: rcpt.
 * Config files: none.
 * Arguments: none.
 * Replies: \`550 …\` when …; otherwise DECLINED, so the next plugin decides.
 */
import { DECLINED, DENY, LOGINFO, type Hooks } from "qpsmtpd";

export const hook_rcpt: Hooks["rcpt"] = async function (txn, rcpt) {
  this.log(LOGINFO, \`\${txn.sender()} -> \${rcpt}\`);
  if (rcpt.user === "nobody") return [DENY, "no such user"];
  return DECLINED;
};
`;
}

export function testTemplate(name: string): string {
  const id = name.replace(/\W/g, "_");
  return `// Run it with: qpsmtpd test ${basename(name)}_test.ts
import { expect, test, TestSession } from "qpsmtpd/testing";
import * as ${id} from "./${basename(name)}.ts";

test("${name} refuses nobody and leaves the rest to rcpt_ok", async () => {
  const t = await TestSession.start({
    modules: { "${name}": ${id} },
    plugins: ["${name}", "rcpt_ok"],
    config: { rcpthosts: "example.org" },
  });
  await t.command("HELO client.example");
  await t.command("MAIL FROM:<a@example.net>");
  expect((await t.command("RCPT TO:<nobody@example.org>")).code).toBe(550);
  expect((await t.command("RCPT TO:<somebody@example.org>")).code).toBe(250);
});
`;
}

/** Writes `<dir>/<name>.ts` and `<dir>/<name>_test.ts`; refuses to overwrite. Returns the paths. */
export function scaffold(name: string, dir: string): string[] {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_\-/]*$/.test(name)) throw new Error(`bad plugin name "${name}"`);
  const plugin = join(dir, `${name}.ts`);
  const test = join(dir, `${name}_test.ts`);
  for (const f of [plugin, test]) if (fs.existsSync(f)) throw new Error(`${f} exists; not overwriting it`);
  fs.mkdirSync(join(plugin, ".."), { recursive: true });
  fs.writeFileSync(plugin, pluginTemplate(name));
  fs.writeFileSync(test, testTemplate(name));
  return [plugin, test];
}
