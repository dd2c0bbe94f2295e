/**
 * tls: STARTTLS (RFC 3207), and the certificate for implicit-TLS listeners (port 465 style).
 *
 * Hooks: ehlo (advertises STARTTLS until TLS is up), unrecognized_command (STARTTLS).
 * Arguments: `cert key [ca]` paths, absolute or relative to the config directory
 * (default `ssl/qpsmtpd-server.crt` and `ssl/qpsmtpd-server.key`).
 * Config files: `tls_ciphers` (OpenSSL cipher list for TLS 1.2), `tls_protocols` is ignored:
 * TLS 1.2 is the minimum.
 * Replies: `220 Go ahead with TLS`; `501 5.5.4 Syntax error (no parameters allowed)`;
 * `554 5.5.1 TLS already active`; `503 5.5.1 Already authenticated` (no STARTTLS after AUTH).
 * After the handshake every byte sent with STARTTLS is gone and the client must EHLO again.
 */
import * as fs from "node:fs";
import { createSecureContext, type SecureContext } from "node:tls";
import { isAbsolute, join } from "node:path";
import { DECLINED, DONE, LOGINFO, type Hooks, type Plugin, type PluginHost } from "qpsmtpd";

function contextOf(p: Plugin): SecureContext {
  return p.data["context"] as SecureContext;
}

export async function init(this: Plugin, qp: PluginHost, cert?: string, key?: string, ca?: string): Promise<void> {
  const resolvePath = (f: string): string => {
    if (isAbsolute(f)) return f;
    return qp.configDir.path(f) ?? join(qp.configDir.dirs[0] ?? ".", f);
  };
  const certPath = resolvePath(cert ?? "ssl/qpsmtpd-server.crt");
  const keyPath = resolvePath(key ?? "ssl/qpsmtpd-server.key");
  const read = (f: string): Buffer => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new Error(`cannot read ${f}: ${(e as Error).message}`);
    }
  };
  const ciphers = qp.config("tls_ciphers");
  const context = createSecureContext({
    cert: read(certPath),
    key: read(keyPath),
    ...(ca ? { ca: read(resolvePath(ca)) } : {}),
    minVersion: "TLSv1.2",
    ...(ciphers ? { ciphers } : {}),
  });
  this.data["context"] = context;
  qp.tls_context = context;
}

export const hook_ehlo: Hooks["ehlo"] = function (txn) {
  if (this.connection.tls) return DECLINED;
  const caps = txn.notes("capabilities");
  txn.notes("capabilities", [...(Array.isArray(caps) ? caps : []), "STARTTLS"]);
  return DECLINED;
};

export const hook_unrecognized_command: Hooks["unrecognized_command"] = async function (_txn, cmd, rest) {
  if (cmd !== "starttls") return DECLINED;
  if (rest.trim() !== "") {
    this.qp.respond(501, "5.5.4 Syntax error (no parameters allowed)");
    return DONE;
  }
  if (this.connection.tls) {
    this.qp.respond(554, "5.5.1 TLS already active");
    return DONE;
  }
  if (this.qp.authenticated()) {
    this.qp.respond(503, "5.5.1 Already authenticated");
    return DONE;
  }
  try {
    await this.qp.start_tls(contextOf(this));
  } catch (e) {
    this.log(LOGINFO, `TLS handshake failed: ${(e as Error).message}`);
    await this.qp.disconnect();
    return DONE;
  }
  this.log(LOGINFO, `TLS established: ${this.connection.tls_cipher}`);
  return DONE;
};

