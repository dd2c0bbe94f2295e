import { describe, expect, test } from "bun:test";
import { isForbiddenCommand, isKnownVerb, isVerb, parseParams, splitCommand } from "../../src/smtp/command.ts";

describe("splitCommand", () => {
  test("the verb, lower-cased, and what follows its spaces", () => {
    expect(splitCommand("MAIL FROM:<a@b.example>")).toEqual({ verb: "mail", rest: "FROM:<a@b.example>" });
    expect(splitCommand("RCPT   TO:<x@y.example>  ")).toEqual({ verb: "rcpt", rest: "TO:<x@y.example>  " });
    expect(splitCommand("QUIT")).toEqual({ verb: "quit", rest: "" });
    expect(splitCommand("NOOP   ")).toEqual({ verb: "noop", rest: "" });
    expect(splitCommand(" HELO x")).toEqual({ verb: "", rest: "HELO x" });
    expect(splitCommand("")).toEqual({ verb: "", rest: "" });
  });

  test("other white space after the verb makes no command; inside the rest it stays", () => {
    expect(splitCommand("MAIL\tFROM:<a@b.example>")).toEqual({ verb: "", rest: "" });
    expect(splitCommand("MAIL\xa0FROM:<a@b.example>")).toEqual({ verb: "", rest: "" });
    expect(splitCommand("EHLO \tx\xa0y")).toEqual({ verb: "ehlo", rest: "\tx\xa0y" });
  });

  test("says what the regular expression it replaced said, for every short line of a mixed alphabet", () => {
    const old = (line: string) => {
      const m = /^(\S*)(?: +(.*))?$/s.exec(line);
      return { verb: (m?.[1] ?? "").toLowerCase(), rest: m?.[2] ?? "" };
    };
    const alphabet = ["A", "b", " ", "\t", "\xa0", "\u2003", ":", "\xe9", "\v"];
    let lines = [""];
    let checked = 0;
    for (let len = 1; len <= 5; len++) {
      lines = lines.flatMap((l) => alphabet.map((c) => l + c));
      for (const l of lines) {
        expect(splitCommand(l)).toEqual(old(l));
        checked++;
      }
    }
    expect(checked).toBe(66429);
  });

  test("the common verbs in every mix of case, and near misses, as the regular expression said", () => {
    const old = (line: string) => {
      const m = /^(\S*)(?: +(.*))?$/s.exec(line);
      return { verb: (m?.[1] ?? "").toLowerCase(), rest: m?.[2] ?? "" };
    };
    const cases = (w: string): string[] =>
      w === "" ? [""] : cases(w.slice(1)).flatMap((r) => [w[0]!.toLowerCase() + r, w[0]!.toUpperCase() + r]);
    const verbs = ["helo", "ehlo", "mail", "rcpt", "data", "bdat", "rset", "noop", "quit", "auth", "vrfy", "help", "starttls"];
    const near = ["rcp", "rcptx", "rc@t", "rcp[", "m\u212ail", "\u0130elo", "xclient", "expn", "starttl", "starttlsx"];
    let checked = 0;
    for (const w of [...verbs, ...near]) {
      for (const v of cases(w)) {
        for (const tail of ["", " ", "  TO:<a@b.example>", ":", "\t", "X"]) {
          const line = v + tail;
          const got = splitCommand(line);
          expect(got).toEqual(old(line));
          expect(isKnownVerb(got.verb)).toBe(verbs.includes(got.verb));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(3000);
  });
});

describe("isVerb, isForbiddenCommand, parseParams", () => {
  test("a verb is 1 to 12 word characters", () => {
    expect(isVerb("mail")).toBe(true);
    expect(isVerb("")).toBe(false);
    expect(isVerb("a".repeat(13))).toBe(false);
    expect(isVerb("ma-il")).toBe(false);
  });

  test("HTTP requests and header lines are not SMTP", () => {
    expect(isForbiddenCommand("GET / HTTP/1.0")).toBe(true);
    expect(isForbiddenCommand("Subject: hi")).toBe(true);
    expect(isForbiddenCommand("MAIL FROM:<a@b.example>")).toBe(false);
  });

  test("parameters: keywords lower-cased, values kept, duplicates and bad syntax refused", () => {
    expect(parseParams(["SIZE=100", "BODY=8BITMIME", "SMTPUTF8"])).toEqual({ size: "100", body: "8BITMIME", smtputf8: undefined });
    expect(parseParams(["SIZE=1", "size=2"])).toBe("Duplicate parameter SIZE");
    expect(parseParams(["-X=1"])).toBe("Syntax error in parameters");
    expect(parseParams(["X=a=b"])).toBe("Syntax error in parameters");
  });
});
