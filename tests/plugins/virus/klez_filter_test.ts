/** virus/klez_filter: the Klez signature near the top of a large message. */
import { describe, expect, test } from "bun:test";
import { sendMessage as send } from "../../helpers/sessions.ts";
import { expectUnknownArgument } from "../../helpers/plugin_args.ts";

describe("virus/klez_filter", () => {
  const klez = "Content-type: application/octet-stream\n\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAA\n";
  const pad = (n: number): string => `${"z".repeat(75)}\n`.repeat(Math.ceil(n / 76));
  test("the signature in a large message is refused", async () => {
    const r = (await send(["virus/klez_filter"], `Subject: x\n\n${klez}${pad(61000)}`)).r;
    expect([r.code, r.text]).toEqual([552, "Klez Virus Detected"]);
  });
  test("small messages and signatures past line 40 pass", async () => {
    expect((await send(["virus/klez_filter"], `Subject: x\n\n${klez}`)).r.code).toBe(250);
    expect((await send(["virus/klez_filter"], `Subject: x\n\n${"line\n".repeat(45)}${klez}${pad(61000)}`)).r.code).toBe(250);
  });
});

describe("virus/klez_filter arguments", () => {
  test("it takes none: a word stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("virus/klez_filter max_size 60000", "max_size");
  });
});
