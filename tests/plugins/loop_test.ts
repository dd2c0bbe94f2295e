/** loop: the hop limit, counting Received and Delivered-To. */
import { describe, expect, test } from "bun:test";
import { sendMessage as send } from "../helpers/sessions.ts";
import { expectUnknownArgument } from "../helpers/plugin_args.ts";

describe("loop", () => {
  const received = (n: number): string => "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n".repeat(n);
  test("refuses at the hop limit, counting Delivered-To too", async () => {
    expect((await send(["loop 5"], `${received(4)}Subject: ok\n\nb\n`)).r.code).toBe(250);
    const r = (await send(["loop 5"], `${received(3)}Delivered-To: a@example.org\nDelivered-To: b@example.org\nSubject: x\n\nb\n`)).r;
    expect([r.code, r.text]).toEqual([552, "Too many hops. This message is looping. (#5.4.6)"]);
    expect((await send(["loop"], `${received(99)}Subject: x\n\nb\n`)).r.code).toBe(250);
    expect((await send(["loop"], `${received(100)}Subject: x\n\nb\n`)).r.code).toBe(552);
  });
});

describe("loop arguments", () => {
  test("a word it does not know stops the load, naming the line and the word", async () => {
    await expectUnknownArgument("loop 5 6", "6");
  });
});
