/**
 * The peer handshake (protocol 6) over real loopback sockets: several secrets per side during a
 * rotation, mismatches reported on both ends, older versions refused, the highest common version
 * chosen from both ranges (none in common refused on both ends), reflection refused, and the
 * last failure kept by PeerLink until an authentication succeeds.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { chooseVersion, newNonce, peerMac, provenSecret } from "../../../target/replication/peer-auth.js";
import { PeerConnection } from "../../../target/replication/peer-connection.js";
import { PeerLink } from "../../../target/replication/peer-link.js";
import { PeerSecrets } from "../../../target/replication/peer-secrets.js";
import {
  encodeFrame,
  FrameDecoder,
  PEER_PROTOCOL_VERSION,
  type Message,
} from "../../../target/replication/protocol.js";
import { waitFor } from "../../support/processes.js";
import { writeSecretVolume } from "../../support/kubelet-secret.js";

class LogCapture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const quiet = pino({ level: "silent" });
const secrets = (value: string) => new PeerSecrets(Buffer.from(value));
/** A node mid-rotation: `current` is the new value, `previous` still accepted. */
const rotating = (current: string, previous: string) => {
  const s = new PeerSecrets(Buffer.from(previous));
  s.update(Buffer.from(current));
  return s;
};
const names = (s: PeerSecrets) => s.accepted().map((b) => b.toString());

interface Outcome {
  a: PeerConnection;
  b: PeerConnection;
  okA: boolean;
  okB: boolean;
}

async function handshake(sa: PeerSecrets, sb: PeerSecrets): Promise<Outcome> {
  let b!: PeerConnection;
  const accepted = new Promise<void>((resolve) => {
    server.once("connection", (socket: net.Socket) => {
      b = new PeerConnection({
        socket,
        role: "acceptor",
        node: "b",
        secrets: sb,
        logger: quiet,
        heartbeatMs: 1000,
        timeoutMs: 5000,
      });
      resolve();
    });
  });
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((r) => socket.once("connect", () => r()));
  const a = new PeerConnection({
    socket,
    role: "dialer",
    node: "a",
    secrets: sa,
    logger: quiet,
    heartbeatMs: 1000,
    timeoutMs: 5000,
  });
  await accepted;
  const [ra, rb] = await Promise.allSettled([a.ready, b.ready]);
  const out = { a, b, okA: ra.status === "fulfilled", okB: rb.status === "fulfilled" };
  a.close("test done");
  b.close("test done");
  return out;
}

const server = net.createServer();
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as net.AddressInfo).port;
after(() => server.close());

describe("peer handshake with several secrets", () => {
  it("a node holding two secrets (new and previous) authenticates a partner holding only the previous one", async () => {
    const a = rotating("new", "old");
    const r = await handshake(a, secrets("old"));
    assert.ok(r.okA && r.okB, "both ends authenticated");
    assert.deepEqual(names(a), ["new", "old"], "the partner has not proven the new one: the previous stays");
  });

  it("a node holding two secrets authenticates a partner holding only the new one, and then drops the previous", async () => {
    const a = rotating("new", "old");
    const r = await handshake(a, secrets("new"));
    assert.ok(r.okA && r.okB);
    assert.deepEqual(names(a), ["new"], "rotation complete once the partner proved the new secret");
  });

  it("the acceptor holding two secrets authenticates a dialer holding one", async () => {
    const b = rotating("new", "old");
    const r = await handshake(secrets("old"), b);
    assert.ok(r.okA && r.okB);
  });

  it("disjoint secrets fail on both ends, each with a reason naming the wrong secret", async () => {
    const r = await handshake(rotating("x2", "x1"), secrets("y"));
    assert.ok(!r.okA && !r.okB);
    for (const c of [r.a, r.b]) {
      assert.equal(c.authFailure?.kind, "secret");
      assert.match(c.authFailure!.message, /peer failed authentication \(wrong secret\)/);
      assert.match(c.authFailure!.message, /the two nodes hold different peer secrets/);
    }
    assert.match(r.a.authFailure!.message, /any of the 2 peer secrets/);
    assert.match(r.b.authFailure!.message, /knowledge of the peer secret this node accepts/);
  });

  it("a proof is bound to its node name and both nonces: reflected or replayed MACs do not match", () => {
    const s = [Buffer.from("s3cret")];
    const [na, nb] = [newNonce(), newNonce()];
    assert.ok(provenSecret(s, "b", na, nb, [peerMac(s[0]!, "b", na, nb)]));
    assert.equal(provenSecret(s, "a", na, nb, [peerMac(s[0]!, "b", na, nb)]), undefined, "reflected");
    assert.equal(provenSecret(s, "b", na, newNonce(), [peerMac(s[0]!, "b", na, nb)]), undefined, "replayed");
    assert.equal(provenSecret(s, "b", na, nb, [peerMac(Buffer.from("other"), "b", na, nb)]), undefined);
  });
});

/** A raw dialer speaking whatever it is told, reading the acceptor's frames. */
async function rawDialer(toPort: number) {
  const socket = net.connect(toPort, "127.0.0.1");
  await new Promise<void>((r) => socket.once("connect", () => r()));
  const decoder = new FrameDecoder();
  const received: Message[] = [];
  let closed = false;
  socket.on("data", (d: Buffer) => received.push(...decoder.push(d)));
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  return {
    send: (frame: Buffer[]) => socket.write(Buffer.concat(frame)),
    received,
    closed: () => closed,
    destroy: () => socket.destroy(),
  };
}

describe("peer link: protocol versions and reported failures", () => {
  const links: PeerLink[] = [];
  after(async () => {
    for (const l of links) await l.stop();
  });

  async function acceptor(secret: Buffer | PeerSecrets, log = new LogCapture()) {
    const link = new PeerLink({
      node: "b",
      peer: { host: "127.0.0.1", port: 1 },
      listen: { host: "127.0.0.1", port: 0 },
      secret,
      logger: pino({ level: "info" }, log),
      heartbeatMs: 200,
      timeoutMs: 2000,
      onConnection: () => undefined,
    });
    links.push(link);
    await link.start();
    return { link, log, port: link.address()!.port };
  }

  it("an accept error (EMFILE) on node b's peer listener after it started is logged, not fatal, and node a still authenticates afterwards", async () => {
    // catch the listener PeerLink creates, to raise the error Node emits when accept fails
    const mutableNet = net as unknown as { createServer: typeof net.createServer };
    const createServer = mutableNet.createServer;
    let listener: net.Server | undefined;
    mutableNet.createServer = ((...args: Parameters<typeof net.createServer>) =>
      (listener = createServer(...args))) as typeof net.createServer;
    let b: Awaited<ReturnType<typeof acceptor>>;
    try {
      b = await acceptor(secrets("the-pair-secret"));
    } finally {
      mutableNet.createServer = createServer;
    }
    assert.ok(listener, "PeerLink listens with net.createServer");
    const emfile = Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" });
    // without a listener for it, this 'error' event would throw and end the process
    listener.emit("error", emfile);
    assert.match(b.log.text, /"msg":"peer listener error"/);
    assert.match(b.log.text, /"code":"EMFILE"/);
    const connected: PeerConnection[] = [];
    const a = new PeerLink({
      node: "a",
      peer: { host: "127.0.0.1", port: b.port },
      listen: { host: "127.0.0.1", port: 0 },
      secret: secrets("the-pair-secret"),
      logger: quiet,
      heartbeatMs: 200,
      timeoutMs: 2000,
      onConnection: (c) => {
        connected.push(c);
        c.setHandler(() => undefined);
      },
    });
    links.push(a);
    await a.start();
    await waitFor("node a authenticated with node b", async () => connected.length > 0, 10_000, 20);
  });

  for (const version of [1, 2, 3, 4, 5])
    it(`a partner speaking peer protocol ${version} is refused with 'partner speaks peer protocol ${version}, this node 6 to 7: upgrade both nodes' (authError kind "version")`, async () => {
      assert.equal(PEER_PROTOCOL_VERSION, 7);
      const { link, log, port: p } = await acceptor(Buffer.from("s3cret"));
      const old = await rawDialer(p);
      old.send(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version }));
      await waitFor("the old partner refused", async () => old.closed(), 5000, 20);
      assert.equal(old.received.length, 0, `nothing is answered to a version ${version} hello`);
      const reason = `partner speaks peer protocol ${version}, this node 6 to 7: upgrade both nodes`;
      assert.ok(log.text.includes(reason), log.text);
      assert.equal(link.authError()?.kind, "version");
      assert.equal(link.authError()?.reason, reason);
    });

  it("a node of an older version reads this node's hello (same frame format) and sees versions 6 to 7 in it", async () => {
    // What a version 4 acceptor does with the hello: decode it with the plain frame format (its
    // schema has no minVersion, so a node speaking one version sends none) and compare the version
    // (it then refuses 'partner speaks peer protocol 6, this node 4').
    const old = net.createServer();
    await new Promise<void>((r) => old.listen(0, "127.0.0.1", () => r()));
    const got = new Promise<Message>((resolve) =>
      old.once("connection", (s: net.Socket) => {
        const d = new FrameDecoder();
        s.on("data", (chunk: Buffer) => {
          const [m] = d.push(chunk);
          if (m) resolve(m);
        });
      }),
    );
    const socket = net.connect((old.address() as net.AddressInfo).port, "127.0.0.1");
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const c = new PeerConnection({
      socket,
      role: "dialer",
      node: "a",
      secrets: secrets("s3cret"),
      logger: quiet,
      heartbeatMs: 1000,
      timeoutMs: 5000,
    });
    try {
      const hello = await got;
      assert.equal(hello.type, "hello");
      assert.deepEqual(hello.type === "hello" && hello.body, {
        node: "a",
        nonce: hello.type === "hello" ? hello.body.nonce : "",
        version: 7,
        minVersion: 6,
      });
    } finally {
      c.close("test done");
      old.close();
    }
  });

  it("a dialer speaking peer protocols 6 to 8 is answered with version 7, the highest both speak, and what b asks of the records", async () => {
    const { port: p } = await acceptor(Buffer.from("s3cret"));
    const newer = await rawDialer(p);
    newer.send(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version: 8, minVersion: 6 }));
    const reply = await waitFor(
      "helloReply",
      async () => newer.received.find((x) => x.type === "helloReply"),
      5000,
      20,
    );
    assert.equal(reply.type === "helloReply" && reply.body.version, 7);
    assert.equal(reply.type === "helloReply" && reply.body.records, "encrypted");
    newer.destroy();
  });

  it("a dialer of peer protocol 6 gets a helloReply of version 6 without `records` (its schema has none)", async () => {
    const { port: p } = await acceptor(Buffer.from("s3cret"));
    const v6 = await rawDialer(p);
    v6.send(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version: 6 }));
    const reply = await waitFor(
      "helloReply",
      async () => v6.received.find((x) => x.type === "helloReply"),
      5000,
      20,
    );
    assert.equal(reply.type === "helloReply" && reply.body.version, 6);
    assert.ok(reply.type === "helloReply" && !("records" in reply.body));
    v6.destroy();
  });

  it('a dialer speaking only newer versions (8 to 10) is refused with both ranges named (authError kind "version")', async () => {
    const { link, log, port: p } = await acceptor(Buffer.from("s3cret"));
    const newer = await rawDialer(p);
    newer.send(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version: 10, minVersion: 8 }));
    await waitFor("the newer partner refused", async () => newer.closed(), 5000, 20);
    assert.equal(newer.received.length, 0, "nothing is answered to a hello without a common version");
    const reason = "partner speaks peer protocols 8 to 10, this node 6 to 7: run one version on both nodes";
    assert.ok(log.text.includes(reason), log.text);
    assert.equal(link.authError()?.kind, "version");
    assert.equal(link.authError()?.reason, reason);
  });

  it("a dialer refuses a helloReply naming a version it does not speak", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    server.once("connection", (s: net.Socket) => {
      const d = new FrameDecoder();
      s.on("error", () => undefined);
      s.on("data", (chunk: Buffer) => {
        const [m] = d.push(chunk);
        if (m?.type !== "hello") return;
        const macs = [peerMac(Buffer.from("s3cret"), "b", m.body.nonce, "00".repeat(32))];
        s.write(
          Buffer.concat(
            encodeFrame("helloReply", 0, { node: "b", nonce: "00".repeat(32), macs, version: 5 }),
          ),
        );
      });
    });
    const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const c = new PeerConnection({
      socket,
      role: "dialer",
      node: "a",
      secrets: secrets("s3cret"),
      logger: quiet,
      heartbeatMs: 1000,
      timeoutMs: 5000,
    });
    try {
      await assert.rejects(c.ready);
      assert.equal(c.authFailure?.kind, "version");
      assert.equal(
        c.authFailure?.message,
        "partner chose peer protocol 5, this node speaks 6 to 7: run one version on both nodes",
      );
    } finally {
      c.close("test done");
      server.close();
    }
  });

  it("chooseVersion picks the highest version both ranges hold, and names both when there is none", () => {
    assert.deepEqual(chooseVersion({ min: 4, max: 9 }, { min: 6, max: 7 }), { version: 7 });
    assert.deepEqual(chooseVersion({ min: 6, max: 6 }, { min: 5, max: 8 }), { version: 6 });
    assert.deepEqual(chooseVersion({ min: 3, max: 5 }, { min: 6, max: 7 }), {
      refusal: "partner speaks peer protocols 3 to 5, this node 6 to 7: upgrade both nodes",
    });
    assert.deepEqual(chooseVersion({ min: 8, max: 6 }, { min: 6, max: 7 }), {
      refusal: "partner speaks peer protocols 8 to 6, this node 6 to 7: run one version on both nodes",
    });
  });

  it("a dialer sending the acceptor's own proofs back (reflection) is refused as a wrong secret", async () => {
    const { link, port: p } = await acceptor(Buffer.from("s3cret"));
    const m = await rawDialer(p);
    m.send(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version: PEER_PROTOCOL_VERSION }));
    const reply = await waitFor(
      "helloReply",
      async () => m.received.find((x) => x.type === "helloReply"),
      5000,
      20,
    );
    assert.equal(reply.type, "helloReply");
    if (reply.type !== "helloReply") return;
    m.send(encodeFrame("helloFinish", 0, { macs: reply.body.macs }));
    await waitFor("the reflecting dialer refused", async () => m.closed(), 5000, 20);
    assert.equal(link.authError()?.kind, "secret");
  });

  it("a wrong secret is kept as authError (since, at, count) until an authentication succeeds, then cleared", async () => {
    const sb = new PeerSecrets(Buffer.from("b-secret"));
    const b = await acceptor(sb);
    const sa = new PeerSecrets(Buffer.from("a-secret"));
    const connected: PeerConnection[] = [];
    const a = new PeerLink({
      node: "a",
      peer: { host: "127.0.0.1", port: b.port },
      listen: { host: "127.0.0.1", port: 0 },
      secret: sa,
      logger: quiet,
      heartbeatMs: 200,
      timeoutMs: 2000,
      onConnection: (c) => {
        connected.push(c);
        c.setHandler(() => undefined);
      },
    });
    links.push(a);
    await a.start();
    const failure = await waitFor(
      "two failures on a",
      async () => ((a.authError()?.count ?? 0) >= 2 ? (a.authError() ?? undefined) : undefined),
      10_000,
      20,
    );
    assert.equal(failure.kind, "secret");
    assert.ok(Date.parse(failure.since) <= Date.parse(failure.at));
    await waitFor("b saw the failure too", async () => b.link.authError()?.kind === "secret", 5000, 20);
    // Rotate a onto b's secret (as if its Secret volume was updated): the next dial succeeds.
    sa.update(Buffer.from("b-secret"));
    await waitFor("authenticated", async () => connected.length > 0, 10_000, 20);
    assert.equal(a.authError(), null);
    await waitFor("b cleared its failure", async () => b.link.authError() === null, 5000, 20);
  });

  it("a partner closing three times in a row without answering hello is reported as possibly speaking an older protocol", async () => {
    const mute = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    const log = new LogCapture();
    const a = new PeerLink({
      node: "a",
      peer: { host: "127.0.0.1", port: (mute.address() as net.AddressInfo).port },
      listen: { host: "127.0.0.1", port: 0 },
      secret: Buffer.from("s"),
      logger: pino({ level: "info" }, log),
      heartbeatMs: 200,
      timeoutMs: 2000,
      onConnection: () => undefined,
    });
    links.push(a);
    try {
      await a.start();
      await waitFor("reported in the status", async () => a.authError()?.kind === "version", 10_000, 20);
      assert.match(a.authError()!.reason, /may speak an older peer protocol than 6 \(upgrade both nodes\)/);
      assert.match(log.text, /may speak an older peer protocol than 6/);
    } finally {
      await a.stop();
      mute.close();
    }
  });
});

describe("peer secrets", () => {
  it("a rotated secret keeps the previous one accepted only for the grace time", () => {
    let now = 1000;
    const s = new PeerSecrets(Buffer.from("old"), { graceMs: 60_000, now: () => now });
    assert.equal(s.update(Buffer.from("old")), false, "the same value is no change");
    assert.equal(s.update(Buffer.from("new")), true);
    assert.deepEqual(names(s), ["new", "old"]);
    s.proven(Buffer.from("old"));
    assert.deepEqual(names(s), ["new", "old"], "proving the previous one ends nothing");
    now += 60_000;
    assert.deepEqual(names(s), ["new"], "grace over");
  });

  it("follows a kubelet-style atomic swap of the secret file within seconds, and ignores an empty one or one under 12 bytes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-peer-secret-"));
    try {
      await writeSecretVolume(dir, { secret: "first-secret\n" });
      const s = new PeerSecrets(Buffer.from("first-secret")).watchFile(join(dir, "secret"), 200);
      try {
        await writeSecretVolume(dir, { secret: "second-secret\n" });
        await waitFor("new value seen", async () => names(s)[0] === "second-secret", 5000, 20);
        assert.deepEqual(names(s), ["second-secret", "first-secret"]);
        await writeSecretVolume(dir, { secret: "" });
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(names(s), ["second-secret", "first-secret"], "an empty file changes nothing");
        await writeSecretVolume(dir, { secret: "short-11-by\n" });
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(
          names(s),
          ["second-secret", "first-secret"],
          "a secret under 12 bytes changes nothing",
        );
      } finally {
        s.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
