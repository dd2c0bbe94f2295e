/**
 * What a plugin that offers TLS gives the server (`server.set_tls`); the server builds the TLS
 * context, and STARTTLS and implicit-TLS listeners use it.
 * @module
 */
export interface TlsOptions {
  /** PEM certificate chain. */
  readonly cert: string | Uint8Array;
  /** PEM private key. */
  readonly key: string | Uint8Array;
  /** PEM CA certificates to trust for client certificates. */
  readonly ca?: string | Uint8Array;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are not affected). */
  readonly ciphers?: string;
}
