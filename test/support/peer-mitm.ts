import net from "node:net";
import { pino } from "pino";
import { PeerConnection } from "../../target/replication/peer-connection.js";
import { PeerSecrets } from "../../target/replication/peer-secrets.js";
import type { LinkProtection, Message } from "../../target/replication/protocol.js";

type Alter = ((chunk: Buffer) => Buffer) | null;

export interface MitmLink {
  a: PeerConnection;
  b: PeerConnection;
  /** what b's handler received */
  atB: Message[];
  /** every chunk that crossed, each way */
  seen: { aToB: Buffer[]; bToA: Buffer[] };
  /** bytes written to b as if a had sent them */
  inject(bytes: Buffer): void;
  /** rewrites what a sends to b from now on (null: pass it through) */
  alter(fn: Alter): void;
  close(): void;
}

export interface MitmOptions {
  /** what each node asks of the records (default: neither says, "encrypted") */
  protection?: { a?: LinkProtection; b?: LinkProtection };
  /** rewrites what b sends to a from the first byte on, handshake included */
  alterBtoA?: Alter;
  /** resolve once both connections are ready (default true) */
  waitReady?: boolean;
}

/**
 * Two PeerConnections (a dials, b accepts) through a man in the middle on loopback who sees every
 * byte and can alter or inject bytes.
 */
export async function throughMitm(o: MitmOptions = {}): Promise<MitmLink> {
  const seen = { aToB: [] as Buffer[], bToA: [] as Buffer[] };
  let alterAtoB: Alter = null;
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  // a ⇄ mitm ⇄ b
  const mitmServer = net.createServer();
  await new Promise<void>((r) => mitmServer.listen(0, "127.0.0.1", () => r()));
  const mitmAccepted = new Promise<net.Socket>((r) => mitmServer.once("connection", r));
  const dial = net.connect((mitmServer.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise<void>((r) => dial.once("connect", () => r()));
  const fromA = await mitmAccepted;
  const toB = net.connect(port, "127.0.0.1");
  await new Promise<void>((r) => toB.once("connect", () => r()));
  fromA.on("data", (d: Buffer) => {
    seen.aToB.push(Buffer.from(d));
    toB.write(alterAtoB ? alterAtoB(d) : d);
  });
  toB.on("data", (d: Buffer) => {
    seen.bToA.push(Buffer.from(d));
    fromA.write(o.alterBtoA ? o.alterBtoA(d) : d);
  });
  for (const s of [fromA, toB]) s.on("error", () => undefined);
  fromA.on("close", () => toB.destroy());
  toB.on("close", () => fromA.destroy());
  const opts = {
    logger: pino({ level: "silent" }),
    heartbeatMs: 100,
    timeoutMs: 5000,
    secrets: PeerSecrets.of("the-pair-secret"),
  };
  const own = (n: "a" | "b") => {
    const p = o.protection?.[n];
    return p ? { protection: p } : {};
  };
  const b = new PeerConnection({ ...opts, socket: await accepted, role: "acceptor", node: "b", ...own("b") });
  const a = new PeerConnection({ ...opts, socket: dial, role: "dialer", node: "a", ...own("a") });
  const atB: Message[] = [];
  b.setHandler((m) => atB.push(m));
  a.setHandler(() => undefined);
  if (o.waitReady ?? true) await Promise.all([a.ready, b.ready]);
  return {
    a,
    b,
    atB,
    seen,
    inject: (bytes: Buffer) => toB.write(bytes),
    alter: (fn: Alter) => (alterAtoB = fn),
    close: () => {
      a.close("done");
      b.close("done");
      server.close();
      mitmServer.close();
    },
  };
}
