/** The relay setup shared by the rcpt_ok (open-relay corpus) and relay (relay clients) tests. */
import { TestSession } from "../../src/testing/harness.ts";

export const relayConfig = {
  me: "mx.example.org",
  rcpthosts: ["example.org"],
  relayclients: ["10.1.0.0/16", "2001:db8:1::/48", "172.16.5."],
  norelayclients: ["10.1.2.3"],
};
export const relayPlugins = ["relay", "dont_require_anglebrackets", "rcpt_ok"];

/** The RCPT reply code for `to` from a client at `ip`, after EHLO, `before` and MAIL. */
export async function relayRcpt(ip: string, to: string, before: string[] = []): Promise<number> {
  const t = await TestSession.start({ plugins: relayPlugins, config: relayConfig, remoteIp: ip });
  await t.command("EHLO c");
  for (const c of before) await t.command(c);
  await t.command("MAIL FROM:<a@example.net>");
  return (await t.command(`RCPT TO:${to}`)).code;
}
