/**
 * A TCP proxy between the two pair nodes that a test can break: `cut()` closes every
 * connection and refuses new ones, `blackhole()` keeps connections open but silently drops
 * their traffic (a partition the nodes only notice by missing heartbeats), `partition()` drops
 * one direction or both and, like a real partition, carries no FIN or RST when a node closes its
 * end, `restore()` heals.
 * Listens on 127.0.0.1 only.
 */
import net from "node:net";

export class PairProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  mode: "pass" | "cut" | "blackhole" | "partition" = "pass";
  /** the directions `partition()` drops (node a dials, so a-to-b is client to upstream) */
  private dropped = new Set<"a-to-b" | "b-to-a">();
  connections = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    if (this.mode === "cut") {
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
    const forward = (from: net.Socket, to: net.Socket, dir: "a-to-b" | "b-to-a") =>
      from.on("data", (d: Buffer) => {
        if (this.mode === "pass" || (this.mode === "partition" && !this.dropped.has(dir))) to.write(d);
      });
    forward(client, upstream, "a-to-b");
    forward(upstream, client, "b-to-a");
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
