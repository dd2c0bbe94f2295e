/** examples/systemd/qpsmtpd.service: systemd's own checker accepts it, and its exposure score is low. */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, run } from "../e2e/helpers.ts";

const UNIT = readFileSync(join(import.meta.dir, "../../examples/systemd/qpsmtpd.service"), "utf8");

/** The unit with its programs pointing at `binary`, in a temp dir. */
function unitFor(binary: string, text = UNIT): string {
  const dir = mkdtempSync(join(tmpdir(), "qpunit-"));
  const path = join(dir, "qpsmtpd.service");
  writeFileSync(path, text.replaceAll("/usr/local/bin/qpsmtpd", binary));
  return path;
}

describe("the systemd unit", () => {
  test("systemd-analyze verify has nothing to say; a broken line or a missing program is reported", async () => {
    expect(existsSync(BINARY)).toBe(true);
    expect(await run(["systemd-analyze", "verify", unitFor(BINARY)])).toEqual({ code: 0, out: "" });
    const typo = await run(["systemd-analyze", "verify", unitFor(BINARY, UNIT.replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe"))]);
    expect(typo.out).toContain("Failed to parse boolean value, ignoring: maybe");
    expect((await run(["systemd-analyze", "verify", unitFor("/nonexistent/qpsmtpd")])).code).not.toBe(0);
  });

  test("hardened: exposure below 4 (of 10) in systemd-analyze security; the one capability is binding low ports", async () => {
    const r = await run(["systemd-analyze", "security", "--offline=yes", unitFor(BINARY)]);
    const score = Number(/Overall exposure level for qpsmtpd\.service: ([\d.]+)/.exec(r.out)?.[1]);
    expect(score).toBeLessThan(4);
    expect(UNIT).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    expect(UNIT).toMatch(/^NoNewPrivileges=yes$/m);
    expect(UNIT).toMatch(/^ProtectSystem=strict$/m);
    expect(UNIT).toMatch(/^PrivateTmp=yes$/m);
  });
});
