/**
 * The npm packages a plugin may import besides "qpsmtpd" and `node:` modules: the project's
 * declared dependencies that plugins use. The compiled executable has no node_modules, so a plugin
 * loaded from disk gets these bundled copies by name (the runtime registers them as modules), just
 * as the built-ins do.
 * @module
 */
import * as redis from "@redis/client";
import * as dnsPacket from "dns-packet";
import * as ldapts from "ldapts";
import * as mailauth from "mailauth";
import * as mmdb from "mmdb-lib";
import * as tldts from "tldts";
import * as yaml from "yaml";

export const PLUGIN_DEPENDENCIES: Record<string, Record<string, unknown>> = {
  "@redis/client": redis as unknown as Record<string, unknown>,
  "dns-packet": dnsPacket as unknown as Record<string, unknown>,
  ldapts: ldapts as unknown as Record<string, unknown>,
  mailauth: mailauth as unknown as Record<string, unknown>,
  "mmdb-lib": mmdb as unknown as Record<string, unknown>,
  tldts: tldts as unknown as Record<string, unknown>,
  yaml: yaml as unknown as Record<string, unknown>,
};
