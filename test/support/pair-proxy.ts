/**
 * A TCP proxy between the two pair nodes that a test can break: `cut()` closes every
 * connection and refuses new ones, `blackhole()` keeps connections open but silently drops
 * their traffic (a partition the nodes only notice by missing heartbeats), `partition()` drops
 * one direction or both and, like a real partition, carries no FIN or RST when a node closes its
 * end, `restore()` heals.
 * Listens on 127.0.0.1 only.
 *
 * A man in the middle: with `tap` set, each direction of a connection accepted from then on is
 * cut into units — the handshake's plain frames and the sealed records after it (peer protocol 3,
 * frame-seal.ts) — and each unit goes through `tap`, which says what to forward instead (the unit
 * as it is, altered, nothing, or more); `inject()` adds bytes between two units. `refuseNew` closes
 * new connections while the open ones stay.
 */
import net from "node:net";

export type Direction = "a-to-b" | "b-to-a";

/** A unit of the peer link's byte stream as the proxy saw it. */
export interface StreamUnit {
  dir: Direction;
  /** a plain frame of the handshake, a sealed record, or bytes that are neither (passed as they come) */
  kind: "frame" | "record" | "raw";
  bytes: Buffer;
  /** units seen before this one in this direction of this connection */
  index: number;
}

/** What to forward for a unit (default: [unit.bytes]). */
export type Tap = (u: StreamUnit) => Buffer[];

const FRAME_MAGIC = 0x48534e31; // "HSN1", protocol.ts
const RECORD_MAGIC = 0x48534e53; // "HSNS", frame-seal.ts
const AUTHENTICATED_RECORD_MAGIC = 0x48534e41; // "HSNA", frame-seal.ts

/** Cuts one direction's bytes into whole units. */
class UnitSplitter {
  private buffered = Buffer.alloc(0);
  private index = 0;
  private raw = false;

  constructor(private readonly dir: Direction) {}

  push(chunk: Buffer): StreamUnit[] {
    if (this.raw) return [{ dir: this.dir, kind: "raw", bytes: chunk, index: this.index++ }];
    this.buffered = Buffer.concat([this.buffered, chunk]);
    const out: StreamUnit[] = [];
    for (;;) {
      const b = this.buffered;
      if (b.length < 8) return out;
      const magic = b.readUInt32BE(0);
      let size: number;
      let kind: StreamUnit["kind"];
      if (magic === FRAME_MAGIC) {
        if (b.length < 20) return out;
        size = 20 + b.readUInt32BE(12) + b.readUInt32BE(16);
        kind = "frame";
      } else if (magic === RECORD_MAGIC || magic === AUTHENTICATED_RECORD_MAGIC) {
        size = 8 + b.readUInt32BE(4) + 16;
        kind = "record";
      } else {
        this.raw = true;
        this.buffered = Buffer.alloc(0);
        out.push({ dir: this.dir, kind: "raw", bytes: b, index: this.index++ });
        return out;
      }
      if (b.length < size) return out;
      out.push({ dir: this.dir, kind, bytes: b.subarray(0, size), index: this.index++ });
      this.buffered = b.subarray(size);
    }
  }
}

export class PairProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  mode: "pass" | "cut" | "blackhole" | "partition" = "pass";
  /** the directions `partition()` drops (node a dials, so a-to-b is client to upstream) */
  private dropped = new Set<"a-to-b" | "b-to-a">();
  connections = 0;
  /** cuts connections accepted from now on into units and forwards what it returns */
  tap: Tap | null = null;
  /** new connections are closed at once (the open ones stay) */
  refuseNew = false;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    if (this.mode === "cut" || this.refuseNew) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = net.connect({ host: "127.0.0.1", port: this.targetPort });
    upstream.on("error", () => undefined);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      // A partition hides one side's close from the other.
      if (this.mode === "partition") return;
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("close", end);
    upstream.on("close", end);
    const tap = this.tap;
    const forward = (from: net.Socket, to: net.Socket, dir: "a-to-b" | "b-to-a") => {
      const splitter = tap ? new UnitSplitter(dir) : null;
      from.on("data", (d: Buffer) => {
        if (!(this.mode === "pass" || (this.mode === "partition" && !this.dropped.has(dir)))) return;
        if (!splitter || !tap) {
          to.write(d);
          return;
        }
        for (const u of splitter.push(d)) for (const out of tap(u)) to.write(out);
      });
    };
    forward(client, upstream, "a-to-b");
    forward(upstream, client, "b-to-a");
  }

  /** Writes `bytes` into every open connection in direction `dir` (between two units when tapped). */
  inject(dir: Direction, bytes: Buffer): void {
    for (const [client, upstream] of this.pairs) (dir === "a-to-b" ? upstream : client).write(bytes);
  }

  cut(): void {
    this.mode = "cut";
    for (const [c, u] of this.pairs) {
      c.destroy();
      u.destroy();
    }
    this.pairs.clear();
  }

  blackhole(): void {
    this.mode = "blackhole";
  }

  /**
   * Drops the traffic of one direction (or both) on the open connections and on new ones,
   * without passing on closes: a node whose partner went silent is not told so by its socket.
   */
  partition(drop: "a-to-b" | "b-to-a" | "both"): void {
    this.mode = "partition";
    this.dropped = new Set(drop === "both" ? ["a-to-b", "b-to-a"] : [drop]);
  }

  /** Heals the link; connections that lost data while blackholed or partitioned are closed (their stream is broken). */
  restore(): void {
    if (this.mode === "blackhole" || this.mode === "partition") {
      for (const [c, u] of this.pairs) {
        c.destroy();
        u.destroy();
      }
      this.pairs.clear();
    }
    this.mode = "pass";
  }

  async stop(): Promise<void> {
    this.cut();
    const s = this.server;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
