/**
 * `qpsmtpd dkim-keygen DOMAIN [SELECTOR]`: qpsmtpd's dkim_key_gen.sh. Writes a DKIM key pair
 * where the dkim plugin looks (`dkim/<domain>/` in the config directory: `private`, mode 0600,
 * `public`, `selector`, and `dns`, the record to publish) and returns that DNS record. Built with
 * node:crypto alone, so the mail host needs no openssl.
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";

export interface DkimKeygenOptions {
  /** `rsa` (2048 bits, what every verifier knows) or `ed25519` (RFC 8463). @default "rsa" */
  readonly type?: "rsa" | "ed25519";
  /** RSA key size; at least 1024 (RFC 8301), 2048 recommended. @default 2048 */
  readonly bits?: number;
  /** Replace an existing key. @default false */
  readonly force?: boolean;
  /** For the default selector (`nov2026`, as qpsmtpd's script). @default now */
  readonly now?: Date;
}

export interface DkimKey {
  /** The key's directory. */
  readonly dir: string;
  readonly selector: string;
  /** The TXT record's name, `<selector>._domainkey.<domain>`. */
  readonly name: string;
  /** Its value, `v=DKIM1; k=...; p=...`. */
  readonly value: string;
  /** The record in zone-file syntax, strings split at 255 bytes: what to publish. */
  readonly record: string;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** `nov2026`: qpsmtpd's default selector, the month and year the key was made. */
export function defaultSelector(now = new Date()): string {
  return now.toLocaleString("en", { month: "short", timeZone: "UTC" }).toLowerCase() + now.getUTCFullYear();
}

/** Writes the key pair for `domain` under `configDir/dkim/` and returns the record to publish. */
export function dkimKeygen(configDir: string, domain: string, selector?: string, opts: DkimKeygenOptions = {}): DkimKey {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (!d.includes(".") || !d.split(".").every((l) => LABEL.test(l))) throw new Error(`"${domain}" is not a domain name`);
  const sel = (selector ?? defaultSelector(opts.now)).toLowerCase();
  if (!sel.split(".").every((l) => LABEL.test(l))) throw new Error(`"${selector}" is not a valid selector (DNS labels)`);
  const type = opts.type ?? "rsa";
  const bits = opts.bits ?? 2048;
  if (type === "rsa" && bits < 1024) throw new Error("RSA keys under 1024 bits are not valid for DKIM (RFC 8301)");
  const dir = join(configDir, "dkim", d);
  if (fs.existsSync(join(dir, "private")) && !opts.force) {
    throw new Error(`${join(dir, "private")} exists; move it away (or force) to make a new key`);
  }
  const { privateKey, publicKey } = type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: bits }) : generateKeyPairSync("ed25519");
  const spki = publicKey.export({ type: "spki", format: "der" });
  // RFC 6376 §3.6.1: RSA keys as the SubjectPublicKeyInfo; RFC 8463 §4.2: Ed25519 as the raw 32 bytes.
  const p = (type === "rsa" ? spki : spki.subarray(spki.length - 32)).toString("base64");
  const name = `${sel}._domainkey.${d}`;
  const value = `v=DKIM1; k=${type}; p=${p}`;
  const strings = value.match(/.{1,255}/g)!.map((s) => `"${s}"`);
  const record = `${name}. IN TXT ( ${strings.join(" ")} )`;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The private key is written with its final mode, so it is never readable by others.
  fs.rmSync(join(dir, "private"), { force: true });
  fs.writeFileSync(join(dir, "private"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  fs.writeFileSync(join(dir, "public"), publicKey.export({ type: "spki", format: "pem" }));
  fs.writeFileSync(join(dir, "selector"), `${sel}\n`);
  fs.writeFileSync(join(dir, "dns"), `${record}\n`);
  return { dir, selector: sel, name, value, record };
}
