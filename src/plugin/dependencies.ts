/**
 * The npm packages a plugin may import besides "qpsmtpd" and `node:` modules: the project's
 * declared dependencies that plugins use. The compiled executable has no node_modules, so a plugin
 * loaded from disk gets these bundled copies by name (the runtime registers them as modules), just
 * as the built-ins do.
 * @module
 */
/** Each package by name, imported when a plugin first imports it (mailauth alone takes about 50 ms). */
export const PLUGIN_DEPENDENCIES: Record<string, () => Promise<Record<string, unknown>>> = {
  "@redis/client": () => import("@redis/client"),
  "dns-packet": () => import("dns-packet"),
  ldapts: () => import("ldapts"),
  mailauth: () => import("mailauth"),
  "mmdb-lib": () => import("mmdb-lib"),
  tldts: () => import("tldts"),
  yaml: () => import("yaml"),
};
