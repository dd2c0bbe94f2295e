/**
 * `qpsmtpd tls-cert`: qpsmtpd's tls_cert script. Writes a self-signed certificate and its key
 * where the tls plugin looks by default (`ssl/qpsmtpd-server.crt` and `ssl/qpsmtpd-server.key`
 * in the config directory). Built with node:crypto alone, so the executable needs no openssl
 * on the mail host: an RSA 2048 key and an X.509 v3 certificate (SHA-256, subjectAltName DNS
 * name, serverAuth) encoded here in DER.
 * @module
 */
import { Buffer } from "node:buffer";
import { createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";

export interface CertSubject {
  /** Common name, the host name clients connect to. */
  readonly CN: string;
  readonly C?: string;
  readonly ST?: string;
  readonly L?: string;
  readonly O?: string;
  readonly OU?: string;
  readonly emailAddress?: string;
}

export interface CertOptions {
  readonly subject: CertSubject;
  /** Days the certificate is valid. @default 730 */
  readonly days?: number;
  /** Start of validity, epoch ms. @default now */
  readonly now?: number;
}

// DER: tag, length, content.
function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}
const seq = (...parts: Uint8Array[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Uint8Array[]) => tlv(0x31, Buffer.concat(parts));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const ia5 = (s: string) => tlv(0x16, Buffer.from(s, "ascii"));
const printable = (s: string) => tlv(0x13, Buffer.from(s, "ascii"));
const octets = (b: Uint8Array) => tlv(0x04, b);
const bits = (b: Uint8Array) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const nul = () => Buffer.from([0x05, 0x00]);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function integer(b: Uint8Array): Buffer {
  let bytes = Buffer.from(b);
  while (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) bytes = bytes.subarray(1);
  return tlv(0x02, bytes[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const NAME_OIDS: ReadonlyArray<[keyof CertSubject, string]> = [
  ["C", "2.5.4.6"],
  ["ST", "2.5.4.8"],
  ["L", "2.5.4.7"],
  ["O", "2.5.4.10"],
  ["OU", "2.5.4.11"],
  ["CN", "2.5.4.3"],
  ["emailAddress", "1.2.840.113549.1.9.1"],
];

function name(s: CertSubject): Buffer {
  const rdns = NAME_OIDS.filter(([k]) => s[k] !== undefined && s[k] !== "").map(([k, o]) => {
    const v = s[k]!;
    const value = k === "C" ? printable(v) : k === "emailAddress" ? ia5(v) : utf8(v);
    return set(seq(oid(o), value));
  });
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A new RSA key and a self-signed certificate for it, both PEM. */
export function selfSignedCertificate(opts: CertOptions): { cert: string; key: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const spki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const now = opts.now ?? Date.now();
  const notBefore = now - 60_000; // a minute of slack for clocks a little behind
  const notAfter = now + (opts.days ?? 730) * 86_400_000;
  const sha256WithRsa = seq(oid("1.2.840.113549.1.1.11"), nul());
  const subject = name(opts.subject);
  const san = seq(tlv(0x82, Buffer.from(opts.subject.CN, "ascii"))); // dNSName [2]
  const extensions = tlv(
    0xa3,
    seq(
      extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
      extension("2.5.29.15", true, tlv(0x03, Buffer.from([5, 0xa0]))), // keyUsage: digitalSignature, keyEncipherment (5 unused bits)
      extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
      extension("2.5.29.17", false, san),
    ),
  );
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f; // positive
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    sha256WithRsa,
    subject,
    seq(time(notBefore), time(notAfter)),
    subject,
    Buffer.from(spki),
    extensions,
  );
  const signature = sign("sha256", tbs, privateKey);
  const der = seq(tbs, sha256WithRsa, bits(signature));
  const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { cert: pem("CERTIFICATE", der), key };
}

/** The paths the tls plugin reads by default, under the config directory. */
export function tlsPaths(configDir: string): { cert: string; key: string } {
  return { cert: join(configDir, "ssl", "qpsmtpd-server.crt"), key: join(configDir, "ssl", "qpsmtpd-server.key") };
}

/**
 * Writes the certificate and key (key mode 0600) into `configDir/ssl/`; refuses to replace
 * existing files unless `force`. Returns the paths written.
 */
export function writeTlsCert(configDir: string, opts: CertOptions & { force?: boolean }): string[] {
  const paths = tlsPaths(configDir);
  if (!opts.force) {
    for (const p of [paths.cert, paths.key]) if (fs.existsSync(p)) throw new Error(`${p} exists (use --force to replace it)`);
  }
  const { cert, key } = selfSignedCertificate(opts);
  fs.mkdirSync(join(configDir, "ssl"), { recursive: true, mode: 0o755 });
  fs.writeFileSync(paths.key, key, { mode: 0o600 });
  fs.chmodSync(paths.key, 0o600);
  fs.writeFileSync(paths.cert, cert, { mode: 0o644 });
  return [paths.cert, paths.key];
}
