/**
 * A TCP proxy between the two pair nodes that a test can break: `cut()` closes every
 * connection and refuses new ones, `blackhole()` keeps connections open but silently drops
 * their traffic (a partition the nodes only notice by missing heartbeats), `restore()` heals.
 * Listens on 127.0.0.1 only.
 */
import net from "node:net";

export class PairProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  mode: "pass" | "cut" | "blackhole" = "pass";
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
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("close", end);
    upstream.on("close", end);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on("data", (d: Buffer) => {
        if (this.mode === "pass") to.write(d);
      });
    forward(client, upstream);
    forward(upstream, client);
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

  /** Heals the link; connections that lost data while blackholed are closed (their stream is broken). */
  restore(): void {
    if (this.mode === "blackhole") {
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
