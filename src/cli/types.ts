/**
 * `qpsmtpd types DIR`: writes the declarations of `"qpsmtpd"` and `"qpsmtpd/testing"` and a
 * `tsconfig.json` into DIR, so an editor and `tsc` type-check the plugins there.
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { TYPE_FILES } from "./generated_types.ts";

const TYPES = "types/qpsmtpd";

/** The tsconfig of a plugin directory: strict, no emit, the two modules mapped to the declarations. */
export function pluginTsconfig(): string {
  return JSON.stringify(
    {
      compilerOptions: {
        target: "ES2023",
        module: "ESNext",
        moduleResolution: "bundler",
        lib: ["ES2023", "DOM"],
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
        verbatimModuleSyntax: true,
        skipLibCheck: true,
        paths: {
          qpsmtpd: [`./${TYPES}/src/api/mod.d.ts`],
          "qpsmtpd/testing": [`./${TYPES}/src/testing/mod.d.ts`],
        },
      },
      include: ["**/*.ts"],
      exclude: ["types"],
    },
    null,
    2,
  ) + "\n";
}

/** Writes the declarations (replacing earlier ones) and, unless one exists, a tsconfig.json. Returns the paths written. */
export function writeTypes(dir: string): string[] {
  const out: string[] = [];
  fs.rmSync(join(dir, TYPES), { recursive: true, force: true });
  for (const [rel, text] of Object.entries(TYPE_FILES)) {
    const path = join(dir, TYPES, rel);
    fs.mkdirSync(dirname(path), { recursive: true });
    fs.writeFileSync(path, text);
  }
  out.push(join(dir, TYPES));
  const tsconfig = join(dir, "tsconfig.json");
  if (!fs.existsSync(tsconfig)) {
    fs.writeFileSync(tsconfig, pluginTsconfig());
    out.push(tsconfig);
  }
  return out;
}
