/**
 * Debian's python3-dkim (dkimpy) as an independent DKIM and ARC implementation for the tests:
 * it signs messages ours must verify, and verifies messages ours signed, asking the loopback
 * DNS server for the keys. Keys are made here, per test run.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";

/** Debian's Python, where python3-dkim is installed (not a pyenv one earlier on PATH). */
const PYTHON = "/usr/bin/python3";

/** Runs a Python program with `input` on stdin; its exit code, stdout and stderr apart. */
function python(code: string, args: string[], input: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, ["-c", code, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.on("data", (d: Buffer) => err.push(d));
    p.on("error", reject);
    p.on("close", (c) => resolve({ code: c ?? -1, out: Buffer.concat(out).toString("latin1"), err: Buffer.concat(err).toString() }));
    p.stdin.end(Buffer.from(input, "latin1"));
  });
}

export interface TestKey {
  readonly selector: string;
  readonly type: "rsa" | "ed25519";
  /** PEM (PKCS#8): what config/dkim/<domain>/private holds. */
  readonly pem: string;
  /** What dkimpy takes: PKCS#1 PEM for RSA, the base64 32-byte seed for Ed25519. */
  readonly forDkimpy: string;
  /** The DNS record: `v=DKIM1; k=...; p=...`, as character-strings of at most 255 bytes. */
  readonly txt: string[];
}

function chunks(s: string): string[] {
  return s.match(/.{1,250}/g) ?? [""];
}

export function makeKey(selector: string, type: "rsa" | "ed25519" = "rsa", bits = 2048): TestKey {
  const { privateKey, publicKey } = type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: bits }) : generateKeyPairSync("ed25519");
  const spki = (publicKey as KeyObject).export({ type: "spki", format: "der" });
  const p = type === "rsa" ? spki.toString("base64") : spki.subarray(spki.length - 32).toString("base64");
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  return {
    selector,
    type,
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    forDkimpy: type === "rsa"
      ? privateKey.export({ type: "pkcs1", format: "pem" }).toString()
      : pkcs8.subarray(pkcs8.length - 32).toString("base64"),
    txt: chunks(`v=DKIM1; k=${type}; p=${p}`),
  };
}

/** CRLF line ends, as dkimpy wants them. */
export function crlf(message: string): string {
  return message.replace(/\r?\n/g, "\r\n");
}

const RESOLVER = (port: number) =>
  [
    "import dns.resolver",
    "r = dns.resolver.Resolver(configure=False)",
    "r.nameservers = ['127.0.0.1']",
    `r.port = ${port}`,
    "r.lifetime = 3",
    "dns.resolver.default_resolver = r",
  ].join("\n");

/** dkimpy signs `message` as `domain`; returns the signed message (CRLF). */
export async function dkimpySign(
  message: string,
  opts: { domain: string; key: TestKey; length?: boolean; headers?: string[] },
): Promise<string> {
  const py = [
    "import sys, json, dkim",
    "a = json.loads(sys.argv[1])",
    "msg = sys.stdin.buffer.read()",
    "hdrs = [h.encode() for h in a['headers']] if a['headers'] else None",
    "sig = dkim.sign(msg, a['selector'].encode(), a['domain'].encode(), a['key'].encode(), canonicalize=(b'relaxed', b'relaxed'),",
    "                signature_algorithm=a['alg'].encode(), include_headers=hdrs, length=a['length'])",
    "sys.stdout.buffer.write(sig + msg)",
  ].join("\n");
  const args = JSON.stringify({
    selector: opts.key.selector,
    domain: opts.domain,
    key: opts.key.forDkimpy,
    alg: opts.key.type === "rsa" ? "rsa-sha256" : "ed25519-sha256",
    length: opts.length ?? false,
    headers: opts.headers ?? null,
  });
  const r = await python(py, [args], crlf(message));
  if (r.code !== 0) throw new Error(`dkimpy sign failed: ${r.err}`);
  return r.out;
}

/** dkimpy verifies every DKIM-Signature of `message`, keys from the DNS server on `port`. */
export async function dkimpyVerify(message: string, port: number): Promise<{ ok: boolean; out: string }> {
  const py = [
    "import sys, dkim",
    RESOLVER(port),
    "msg = sys.stdin.buffer.read()",
    "d = dkim.DKIM(msg)",
    "n = msg.count(b'\\nDKIM-Signature:') + (1 if msg.startswith(b'DKIM-Signature:') else 0)",
    "ok = n > 0 and all(d.verify(idx=i) for i in range(n))",
    "print('pass' if ok else 'fail', n)",
  ].join("\n");
  const r = await python(py, [], crlf(message));
  return { ok: r.code === 0 && r.out.startsWith("pass"), out: r.out + r.err };
}

/** dkimpy adds an ARC set to `message` (which must carry an Authentication-Results of `srvId`). */
export async function arcpySign(message: string, opts: { domain: string; key: TestKey; srvId: string; port: number }): Promise<string> {
  const py = [
    "import sys, json, dkim",
    RESOLVER(opts.port),
    "a = json.loads(sys.argv[1])",
    "msg = sys.stdin.buffer.read()",
    "sig = dkim.arc_sign(msg, a['selector'].encode(), a['domain'].encode(), a['key'].encode(), a['srv'].encode())",
    "sys.stdout.buffer.write(b''.join(sig) + msg)",
  ].join("\n");
  const args = JSON.stringify({ selector: opts.key.selector, domain: opts.domain, key: opts.key.forDkimpy, srv: opts.srvId });
  const r = await python(py, [args], crlf(message));
  if (r.code !== 0) throw new Error(`dkimpy arc_sign failed: ${r.err}`);
  return r.out;
}

/** dkimpy validates the ARC chain of `message`: its cv (`pass`, `fail`, `none`), then its comment. */
export async function arcpyVerify(message: string, port: number): Promise<string> {
  const py = [
    "import sys, dkim",
    RESOLVER(port),
    "cv, results, comment = dkim.arc_verify(sys.stdin.buffer.read())",
    "print(cv.decode() if cv else 'fail', comment)",
  ].join("\n");
  const r = await python(py, [], crlf(message));
  return (r.out + r.err).trim();
}
