// As main.ts does at start-up: `import … from "qpsmtpd"` works for plugins loaded from anywhere,
// and a plugin's own tests can `import { TestSession } from "qpsmtpd/testing"`.
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import * as api from "../src/api/mod.ts";
import * as testing from "../src/testing/mod.ts";
import { installPluginModules } from "../src/runtime/runtime.ts";

installPluginModules({
  qpsmtpd: api as unknown as Record<string, unknown>,
  "qpsmtpd/testing": testing as unknown as Record<string, unknown>,
});

// A `bun test` run by hand keeps what the tests and their daemons put in the temp dir in a
// directory of its own and removes it at the end, as tests/run.sh does for `make test` (whose
// directory is used as it is).
if (!basename(tmpdir()).startsWith("qpsmtpd-tests.")) {
  const own = mkdtempSync(join(tmpdir(), "qpsmtpd-tests."));
  chmodSync(own, 0o1777); // as /tmp: daemons and smtp-sink running as nobody use it too
  process.env.TMPDIR = own;
  afterAll(() => rmSync(own, { recursive: true, force: true })); // once, after every file (a hook of the preload)
}
