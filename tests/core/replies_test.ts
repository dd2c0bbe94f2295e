/** Every reply the engine writes comes from the reply table, with its enhanced status code. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPLIES, type Reply, replyLines } from "../../src/core/replies.ts";

const ROOT = resolve(import.meta.dir, "../..");

describe("the reply table", () => {
  test("qpsmtpd's texts are written as qpsmtpd writes them until ENHANCEDSTATUSCODES is on; ours always carry their code", () => {
    expect(replyLines(REPLIES.mailFirst, undefined, false)).toEqual(["Use MAIL before RCPT"]);
    expect(replyLines(REPLIES.mailFirst, undefined, true)).toEqual(["5.5.1 Use MAIL before RCPT"]);
    expect(replyLines(REPLIES.tooManyRecipients, undefined, false)).toEqual(["4.5.3 Too many recipients"]);
    expect(replyLines(REPLIES.goAhead, undefined, true)).toEqual(["go ahead"]); // 354 never carries one
  });

  test("a plugin's text replaces the table's and keeps its code, without doubling one it has", () => {
    const r = REPLIES.rcptRefusals.deny;
    expect(replyLines(r, ["no such user", "really"], false)).toEqual(["no such user", "really"]);
    expect(replyLines(r, ["no such user"], true)).toEqual(["5.7.1 no such user"]);
    expect(replyLines(r, ["5.1.1 no such user"], true)).toEqual(["5.1.1 no such user"]);
  });

  test("every entry's enhanced code fits its reply code's class", () => {
    const entries: Reply[] = [];
    const collect = (x: unknown): void => {
      if (typeof x === "function") collect((x as (...a: unknown[]) => unknown)("x", ["x"]));
      else if (x && typeof x === "object" && "code" in x) entries.push(x as Reply);
      else if (x && typeof x === "object") Object.values(x).forEach(collect);
    };
    Object.values(REPLIES).forEach(collect);
    expect(entries.length).toBeGreaterThan(60);
    for (const e of entries) {
      if (e.status === "") expect([220, 250, 334, 354]).toContain(e.code);
      else expect(`${e.code} ${e.status}`).toMatch(/^([245])\d\d \1\.\d{1,3}\.\d{1,3}$/);
    }
  });

  test("the engine writes no reply of its own making: no literal reply codes outside the table", () => {
    const offenders: string[] = [];
    for (const dir of ["src/core", "src/server"]) {
      for (const f of readdirSync(join(ROOT, dir))) {
        if (f === "replies.ts") continue;
        const text = readFileSync(join(ROOT, dir, f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
        for (const m of text.matchAll(/\b(?:respond|formatReply|refuse|end)\(\s*[2-5]\d\d\b/g)) offenders.push(`${dir}/${f}: ${m[0]}`);
        for (const m of text.matchAll(/["'`][2-5]\d\d[ -]/g)) offenders.push(`${dir}/${f}: ${m[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
