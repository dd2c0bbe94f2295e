// As main.ts does at start-up: `import … from "qpsmtpd"` works for plugins loaded from anywhere,
// and a plugin's own tests can `import { TestSession } from "qpsmtpd/testing"`.
import * as api from "../src/api/mod.ts";
import * as testing from "../src/testing/mod.ts";
import { installPluginModules } from "../src/runtime/runtime.ts";

installPluginModules({
  qpsmtpd: api as unknown as Record<string, unknown>,
  "qpsmtpd/testing": testing as unknown as Record<string, unknown>,
});
