/**
 * tls: STARTTLS (RFC 3207), and the certificate for implicit-TLS listeners (port 465 style).
 *
 * Hooks: ehlo (advertises STARTTLS until TLS is up), unrecognized_command (STARTTLS).
 * Arguments: `cert key [ca]` paths, absolute or relative to the config directory
 * (default `ssl/qpsmtpd-server.crt` and `ssl/qpsmtpd-server.key`); qpsmtpd's fourth, the dhparam
 * file, is accepted and has no effect (logged at start-up). A fifth word stops start-up.
 * Config files: `tls_ciphers` (OpenSSL cipher list for TLS 1.2), `tls_protocols` is ignored:
 * TLS 1.2 is the minimum.
 * Replies: `220 Go ahead with TLS`; `501 5.5.4 Syntax error (no parameters allowed)`;
 * `554 5.5.1 TLS already active`; `503 5.5.1 Already authenticated` (no STARTTLS after AUTH).
 * After the handshake every byte sent with STARTTLS is gone and the client must EHLO again.
 */
import * as fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { DECLINED, DONE, type Hooks, type Init, LOGINFO, LOGWARN, parsePluginArgs } from "qpsmtpd";

export const init: Init = function (server, ...args) {
  const a = parsePluginArgs("tls", args, { positional: [0, 4], usage: "CERT KEY CA DHPARAM" });
  const [cert, key, ca, dhparam] = a.positional;
  // Node offers ECDHE (and TLS 1.3), not finite-field DHE, so qpsmtpd's dhparam file is not needed.
  if (dhparam !== undefined) this.log(LOGWARN, `dhparam ${dhparam} has no effect: ECDHE and TLS 1.3 need no DH parameters`);
  const resolvePath = (f: string): string => isAbsolute(f) ? f : server.config_path(f) ?? join(server.config_dir, f);
  const read = (f: string): Buffer => {
    const path = resolvePath(f);
    try {
      return fs.readFileSync(path);
    } catch (e) {
      throw new Error(`tls: cannot read ${path}: ${(e as Error).message}`);
    }
  };
  const ciphers = server.config("tls_ciphers");
  server.set_tls({
    cert: read(cert ?? "ssl/qpsmtpd-server.crt"),
    key: read(key ?? "ssl/qpsmtpd-server.key"),
    ...(ca ? { ca: read(ca) } : {}),
    ...(ciphers ? { ciphers } : {}),
  });
};

export const hook_ehlo: Hooks["ehlo"] = function (txn) {
  if (this.connection.tls) return DECLINED;
  const caps = txn.notes("capabilities");
  txn.notes("capabilities", [...(caps ?? []), "STARTTLS"]);
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
    await this.qp.start_tls();
  } catch (e) {
    this.log(LOGINFO, `TLS handshake failed: ${(e as Error).message}`);
    await this.qp.disconnect();
    return DONE;
  }
  this.log(LOGINFO, `TLS established: ${this.connection.tls_cipher}`);
  return DONE;
};
