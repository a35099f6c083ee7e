/**
 * The peer listener before authentication: bounded slots where a new connection always gets in,
 * a short deadline, and node a authenticating through a crowd of idle strangers.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { pino } from "pino";
import type { PeerConnection } from "../../../target/replication/peer-connection.js";
import { PeerLink } from "../../../target/replication/peer-link.js";
import { PendingSlots } from "../../../target/replication/peer-slots.js";
import { waitFor } from "../../support/processes.js";

const quiet = pino({ level: "silent" });

describe("pending peer connection slots", () => {
  it("full slots: a new connection is admitted and the oldest silent one of the same source gives way", () => {
    const slots = new PendingSlots(3);
    const dropped: string[] = [];
    const s1 = slots.admit("10.0.0.1", () => dropped.push("s1"));
    slots.admit("10.0.0.1", () => dropped.push("s2"));
    s1.helloSeen();
    slots.admit("10.0.0.1", () => dropped.push("s3"));
    slots.admit("10.0.0.1", () => dropped.push("s4"));
    assert.deepEqual(dropped, ["s2"], "s1 sent a hello: the oldest silent one (s2) goes first");
    assert.equal(slots.size, 3);
    slots.admit("10.0.0.1", () => dropped.push("s5"));
    assert.deepEqual(dropped, ["s2", "s3"]);
  });

  it("a flood from one source only pushes out its own connections, never the partner's from another source", () => {
    const slots = new PendingSlots(16);
    let partnerDropped = false;
    const partner = slots.admit("10.0.0.2", () => (partnerDropped = true));
    for (let i = 0; i < 1000; i++) slots.admit("10.0.0.66", () => undefined);
    assert.equal(partnerDropped, false);
    assert.equal(slots.size, 16);
    assert.equal(slots.dropped, 1000 - 15);
    partner.release();
    assert.equal(slots.size, 15);
  });

  it("IPv6 strangers of one /64 count as one source", () => {
    const slots = new PendingSlots(4);
    let partnerDropped = false;
    slots.admit("fd00::2", () => (partnerDropped = true));
    for (let i = 1; i < 50; i++) slots.admit(`fd00::1:${i.toString(16)}`, () => undefined);
    // fd00::2 and fd00::1:x share fd00:0:0:0::/64: one source, oldest silent first
    assert.equal(partnerDropped, true);
    let other = false;
    slots.admit("fd01::2", () => (other = true));
    for (let i = 1; i < 50; i++) slots.admit(`fd00::1:${i.toString(16)}`, () => undefined);
    assert.equal(other, false, "another /64 is left alone");
  });
});

describe("peer listener under idle connections", () => {
  const links: PeerLink[] = [];
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const l of links) await l.stop();
  });

  async function listener(authTimeoutMs?: number) {
    const connected: PeerConnection[] = [];
    const b = new PeerLink({
      node: "b",
      peer: { host: "127.0.0.1", port: 1 },
      listen: { host: "127.0.0.1", port: 0 },
      secret: Buffer.from("the-pair-secret"),
      logger: quiet,
      heartbeatMs: 200,
      timeoutMs: 2000,
      ...(authTimeoutMs ? { authTimeoutMs } : {}),
      onConnection: (c) => {
        connected.push(c);
        c.setHandler(() => undefined);
      },
    });
    links.push(b);
    await b.start();
    return { b, port: b.address()!.port, connected };
  }

  async function idle(port: number, n: number): Promise<net.Socket[]> {
    const out = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(port, "127.0.0.1", () => resolve(s));
            s.on("error", () => undefined);
          }),
      ),
    );
    sockets.push(...out);
    return out;
  }

  it("200 idle unauthenticated connections: node a still authenticates at once, and node b holds at most 16 of them", async () => {
    const { b, port, connected } = await listener(60_000);
    const strangers = await idle(port, 200);
    await waitFor("b admitted the strangers", async () => b.pendingConnections().dropped >= 184, 5000, 10);
    assert.ok(b.pendingConnections().held <= 16);
    const a = new PeerLink({
      node: "a",
      peer: { host: "127.0.0.1", port },
      listen: { host: "127.0.0.1", port: 0 },
      secret: Buffer.from("the-pair-secret"),
      logger: quiet,
      heartbeatMs: 200,
      timeoutMs: 2000,
      onConnection: (c) => c.setHandler(() => undefined),
    });
    links.push(a);
    const t0 = Date.now();
    await a.start();
    await waitFor("node a authenticated", async () => connected.length > 0, 5000, 10);
    assert.ok(Date.now() - t0 < 2000, "without waiting for the strangers' deadline");
    const closed = strangers.filter((s) => s.destroyed || s.readableEnded).length;
    assert.ok(closed >= 184, `the strangers beyond the slots were closed (${closed})`);
  });

  it("an idle unauthenticated connection is closed after the handshake deadline", async () => {
    const { port } = await listener(300);
    const [s] = await idle(port, 1);
    const t0 = Date.now();
    await new Promise<void>((r) => s!.once("close", () => r()));
    const waited = Date.now() - t0;
    assert.ok(waited >= 250 && waited < 3000, `closed after ${waited} ms`);
  });
});
