/**
 * `make bench`, mail authentication (issue 11): the daemon with and without
 * `sender_permitted_from dkim dmarc`, DNS from a loopback server, 4 KB messages signed by one
 * fixed key (dkimpy, Debian's python3-dkim). Prints messages/s and the daemon's CPU ms per
 * message; bench.ts runs it as its `auth` group. From a helper's proposal, on this harness.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { crlf, dkimpySign, makeKey } from "../tests/helpers/dkimpy.ts";
import { TestDnsServer } from "../tests/helpers/dns_server.ts";
import { COMPILING, cpuMs, startOurs, untilCompiled } from "./procs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const binary = resolve(ROOT, process.env["BENCH_BINARY"] ?? "dist/qpsmtpd");
const scale = Number(process.env["BENCH_SCALE"] ?? 1);
const MESSAGES = Math.max(40, Math.round(2000 * scale));
const SESSIONS = 4;
const workers = execFileSync(binary, ["--help"], { encoding: "utf8" }).includes("--workers") ? ["--workers", "1"] : [];

const key = makeKey("bench");
const dns = await TestDnsServer.start({
  "example.net": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
  "_dmarc.example.net": { TXT: ["v=DMARC1; p=reject"] },
  "bench._domainkey.example.net": { TXT: [key.txt] },
});
const body = Array.from({ length: 60 }, (_, i) => `line ${i} ${"lorem ipsum dolor sit amet ".repeat(2)}`).join("\n");
const signed = await dkimpySign(`From: bench@example.net\nTo: user@example.org\nSubject: bench\n\n${body}\n`, {
  domain: "example.net",
  key,
});
const payload = `${crlf(signed).replace(/\r\n$/, "")}\r\n.\r\n`;

/** One session on one connection: `n` messages, each envelope pipelined before the 354. */
async function session(port: number, n: number): Promise<void> {
  const s = net.connect(port, "127.0.0.1");
  s.setEncoding("latin1");
  let buf = "";
  let wake = () => {};
  s.on("data", (d: string) => ((buf += d), wake()));
  s.on("error", () => wake());
  const reply = async (): Promise<number> => {
    for (;;) {
      const m = /^(?:\d{3}-.*\r\n)*(\d{3}) .*\r\n/.exec(buf);
      if (m) return (buf = buf.slice(m[0].length), Number(m[1]));
      if (s.destroyed) throw new Error("connection closed");
      await new Promise<void>((r) => (wake = r));
    }
  };
  await reply();
  s.write("EHLO bench.example.net\r\n");
  await reply();
  for (let i = 0; i < n; i++) {
    s.write("MAIL FROM:<bench@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n");
    await reply(), await reply(), await reply();
    s.write(payload);
    const code = await reply();
    if (code !== 250) throw new Error(`message refused: ${code}`);
  }
  s.end("QUIT\r\n");
}

async function profile(label: string, plugins: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "qpbench-auth-"));
  const files = {
    me: "mx.bench.example",
    rcpthosts: "example.org",
    size_threshold: "10000",
    dns_servers: `127.0.0.1:${dns.port}`,
    logging: "",
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), `${text}\n`);
  writeFileSync(join(dir, "plugins"), [...plugins, "rcpt_ok", "queue/discard"].join("\n") + "\n");
  const d = await startOurs(binary, dir, ["-c", "200", "-m", "200", ...workers], join(dir, "stderr.log"), dir);
  try {
    // Caches warm and the code compiled, as in every group of make bench: mailauth's is a lot of
    // code, and 200 messages left its compiling in the figures (2.6-2.7 ms per message, not 1.9).
    await untilCompiled(d.pid, () => session(d.port, 500), COMPILING, 20);
    const cpu0 = cpuMs(d.pid);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: SESSIONS }, () => session(d.port, MESSAGES / SESSIONS)));
    const secs = (performance.now() - t0) / 1000;
    const cpu = (cpuMs(d.pid) - cpu0) / MESSAGES;
    console.log(
      `${label.padEnd(46)} ${String(MESSAGES).padStart(6)} ${(MESSAGES / secs).toFixed(0).padStart(8)} ${cpu.toFixed(2).padStart(12)}`,
    );
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `${"profile (4 KB, DKIM-signed, 4 sessions kept)".padEnd(46)} ${"msgs".padStart(6)} ${"msg/s".padStart(8)} ${"CPU ms/msg".padStart(12)}`,
);
await profile("rcpt_ok queue/discard", []);
await profile("+ sender_permitted_from dkim dmarc", ["sender_permitted_from", "dkim", "dmarc"]);
await dns.stop();
