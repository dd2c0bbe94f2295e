/**
 * The cluster's session counts (src/server/load.ts): stress decided on the sum of every worker's
 * sessions, one session at a time, and `child_addrs` (the other workers' addresses) kept in each
 * subscribed worker from the primary's changes.
 */
import { describe, expect, test } from "bun:test";
import { LoadBoard, type LoadDown, PeerAddrs } from "../../src/server/load.ts";

function board(limitConnections: number, threshold = 75) {
  const sent: Array<[number, LoadDown]> = [];
  const logs: string[] = [];
  const b = new LoadBoard({
    limitConnections,
    threshold: () => threshold,
    send: (w, m) => sent.push([w, m]),
    log: (_l, m) => logs.push(m),
  });
  return { b, sent, logs };
}

describe("LoadBoard", () => {
  test("stress: 6 of 8 across two workers, logged once, told to every worker; and over", () => {
    const { b, sent, logs } = board(8);
    b.join(1);
    b.join(2);
    for (let i = 0; i < 4; i++) b.receive(1, { t: "session", ip: "10.0.0.1", d: 1 });
    b.receive(2, { t: "session", ip: "10.0.0.2", d: 1 });
    expect(b.stressed).toBe(false);
    b.receive(2, { t: "session", ip: "10.0.0.2", d: 1 });
    expect(b.stressed).toBe(true);
    b.receive(2, { t: "session", ip: "10.0.0.2", d: 1 });
    expect(logs).toEqual(["under stress: 6 of 8 connections; reads now time out sooner"]);
    expect(sent).toEqual([[1, { t: "stress", on: true }], [2, { t: "stress", on: true }]]);
    // Worker 1 dies: its four sessions are gone with it.
    b.leave(1);
    expect(b.total).toBe(3);
    expect(logs[1]).toBe("stress over");
    expect(sent.at(-1)).toEqual([2, { t: "stress", on: false }]);
  });

  test("no -c, no stress", () => {
    const { b, logs } = board(0);
    b.join(1);
    for (let i = 0; i < 100; i++) b.receive(1, { t: "session", ip: "10.0.0.1", d: 1 });
    expect(b.stressed).toBe(false);
    expect(logs).toEqual([]);
  });

  test("a subscriber gets the others' addresses: a snapshot, then each tick's changes without its own", () => {
    const { b, sent } = board(0);
    b.join(1);
    b.join(2);
    b.receive(2, { t: "session", ip: "10.0.0.2", d: 1 });
    b.receive(1, { t: "session", ip: "10.0.0.1", d: 1 });
    b.receive(1, { t: "subscribe", on: true });
    const peers = new PeerAddrs();
    const deliver = () => {
      for (const [w, m] of sent.splice(0)) if (w === 1 && m.t === "addrs") peers.receive(m);
    };
    deliver();
    expect(peers.list()).toEqual(["10.0.0.2"]);
    b.receive(2, { t: "session", ip: "10.0.0.3", d: 1 });
    b.receive(2, { t: "session", ip: "10.0.0.3", d: 1 });
    b.receive(1, { t: "session", ip: "10.0.0.4", d: 1 }); // its own: not sent back
    b.receive(2, { t: "session", ip: "10.0.0.2", d: -1 });
    expect(b.dirty).toBe(true);
    b.flush();
    deliver();
    expect(peers.list().sort()).toEqual(["10.0.0.3", "10.0.0.3"]);
    b.leave(2);
    b.flush();
    deliver();
    expect(peers.list()).toEqual([]);
  });

  test("changes not yet flushed when a worker subscribes are counted once", () => {
    const { b, sent } = board(0);
    b.join(1);
    b.join(2);
    b.join(3);
    b.receive(3, { t: "subscribe", on: true });
    b.receive(2, { t: "session", ip: "10.0.0.2", d: 1 }); // waits for the flush
    b.receive(1, { t: "subscribe", on: true });
    b.flush();
    const peers = new PeerAddrs();
    for (const [w, m] of sent) if (w === 1 && m.t === "addrs") peers.receive(m);
    expect(peers.list()).toEqual(["10.0.0.2"]);
  });
});
