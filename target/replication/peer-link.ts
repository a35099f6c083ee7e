/**
 * Establishes the peer link: node a dials node b (retrying), node b listens and accepts.
 * One dialer keeps the link unique without a tie-break; both ends authenticate each other
 * (HMAC challenge/response over every secret each accepts, see peer-auth.ts; optionally TLS with
 * both certificates verified against the CA), then seal every frame (frame-seal.ts). Every
 * authenticated connection is handed to `onConnection`; the last authentication failure is kept
 * for the node's status until an authentication succeeds.
 *
 * Before authentication the listener gives strangers little: PEER_AUTH_TIMEOUT_MS to finish the
 * handshake, frames of at most PRE_AUTH_MAX_FRAME_BYTES, a small read buffer, and at most
 * MAX_PENDING_PEER_CONNECTIONS connections at once, where a new one takes the slot of another
 * rather than being refused (peer-slots.ts), so idle or slow strangers cannot keep the partner out.
 */
import net from "node:net";
import tls from "node:tls";
import type { PeerAuthError } from "../agent/status-schema.js";
import type { Logger } from "../log.js";
import { onreadOf, readWith, type ReadSink } from "../net/receive-socket.js";
import type { PeerAuthFailureKind } from "./peer-auth.js";
import {
  PEER_AUTH_TIMEOUT_MS,
  PRE_AUTH_READ_BYTES,
  PeerConnection,
  type PeerAuthRefusal,
} from "./peer-connection.js";
import { MIN_PEER_PROTOCOL_VERSION, type LinkProtection } from "./protocol.js";
import { PeerSecrets } from "./peer-secrets.js";
import { PendingSlots, type PendingSlot } from "./peer-slots.js";
import type { NodeName } from "./witness.js";

export interface HostPort {
  host: string;
  port: number;
}

export interface PeerTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

export interface PeerLinkOptions {
  node: NodeName;
  peer: HostPort;
  listen: HostPort;
  /** one fixed secret, or the set a node accepts (rotations: peer-secrets.ts) */
  secret: Buffer | PeerSecrets;
  tls?: PeerTls;
  /** what this node asks of the records (peer-connection.ts; default "encrypted") */
  protection?: LinkProtection;
  logger: Logger;
  heartbeatMs: number;
  timeoutMs: number;
  /** read lease per acknowledged heartbeat (peer-connection.ts) */
  leaseMs?: number;
  /** unauthenticated connections node b holds at once (default MAX_PENDING_PEER_CONNECTIONS) */
  maxPending?: number;
  /** how long a connection may take to authenticate (default PEER_AUTH_TIMEOUT_MS) */
  authTimeoutMs?: number;
  onConnection: (c: PeerConnection) => void;
}

/**
 * Routes a plain TCP socket's reads (through onread) to its PeerConnection once it exists, so
 * large payloads are read straight into their buffers; bytes read before that are kept.
 */
class ReadRouter implements ReadSink {
  private conn: PeerConnection | null = null;
  private early: Buffer[] = [];
  private earlyBuffer: Buffer | null = null;
  readonly buffer = (): Uint8Array =>
    this.conn?.readTarget() ?? (this.earlyBuffer ??= Buffer.allocUnsafeSlow(PRE_AUTH_READ_BYTES));

  onRead(buf: Uint8Array, n: number): void {
    if (this.conn) this.conn.onRead(buf, n);
    else this.early.push(Buffer.from(buf.subarray(0, n)));
  }

  attach(conn: PeerConnection): void {
    this.conn = conn;
    for (const b of this.early) conn.onRead(b, b.length);
    this.early = [];
  }
}

/** The last failed authentication with the partner: the agent's `replication.peer.authError`. */
export type PeerAuthFailure = PeerAuthError;

/** The node's status message with the authentication failure appended, if any. */
export function withAuthFailure(message: string, f: PeerAuthFailure | null): string {
  return f ? `${message}; peer link refused since ${f.since}: ${f.reason}` : message;
}

/**
 * Connections closed unanswered in a row before this node reports that the partner may speak an
 * older peer protocol (a partner stopping can close one; a node of this version always answers a
 * hello unless it refuses its version or name).
 */
const UNANSWERED_HELLOS = 3;

const RETRY_MS = 500;

export class PeerLink {
  private server: net.Server | null = null;
  private stopped = false;
  private current: PeerConnection | null = null;
  private readonly pending: PendingSlots;
  private lastDropLog = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private dialing: net.Socket | null = null;
  private lastRefusal: { reason: string; at: number } | null = null;
  private failure: PeerAuthFailure | null = null;
  private unansweredHellos = 0;
  private readonly secrets: PeerSecrets;

  constructor(private readonly o: PeerLinkOptions) {
    this.secrets = PeerSecrets.of(o.secret);
    this.pending = new PendingSlots(o.maxPending);
  }

  /** Unauthenticated connections held now, and those dropped to make room so far. */
  pendingConnections(): { held: number; dropped: number } {
    return { held: this.pending.size, dropped: this.pending.dropped };
  }

  /** The last authentication failure with the partner; null once an authentication succeeded. */
  authError(): PeerAuthFailure | null {
    return this.failure ? { ...this.failure } : null;
  }

  private authFailed(kind: PeerAuthFailureKind, reason: string): void {
    const now = new Date().toISOString();
    const f = this.failure;
    this.failure = { kind, reason, since: f?.since ?? now, at: now, count: (f?.count ?? 0) + 1 };
  }

  async start(): Promise<void> {
    if (this.o.node === "b") await this.listen();
    else this.dial();
  }

  /** Called when the current connection ended, so node a dials again. */
  connectionEnded(c: PeerConnection): void {
    if (this.current === c) this.current = null;
    if (this.o.node === "a") this.scheduleDial();
  }

  private scheduleDial(): void {
    if (this.stopped || this.retryTimer || this.current || this.dialing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, RETRY_MS);
  }

  private dial(): void {
    if (this.stopped || this.current || this.dialing) return;
    const { host, port } = this.o.peer;
    const t = this.o.tls;
    const router = t ? null : new ReadRouter();
    const socket = t
      ? tls.connect({
          host,
          port,
          cert: t.cert,
          key: t.key,
          ca: t.ca,
          // The CA pins the peer; both ends also prove the shared secret, so the host name is not checked.
          checkServerIdentity: () => undefined,
        })
      : net.connect({ host, port, onread: onreadOf(router!) });
    this.dialing = socket;
    const connectEvent = t ? "secureConnect" : "connect";
    const timer = setTimeout(() => socket.destroy(new Error("connect timed out")), 3000);
    socket.once(connectEvent, () => {
      clearTimeout(timer);
      this.dialing = null;
      this.adopt(socket, "dialer", router);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      if (this.dialing === socket) {
        this.unansweredHellos = 0;
        this.dialing = null;
        this.o.logger.debug({ peer: `${host}:${port}`, err: e.message }, "cannot reach peer; retrying");
        this.scheduleDial();
      }
    });
  }

  private async listen(): Promise<void> {
    const t = this.o.tls;
    // Every accepted TCP connection takes a slot until it authenticates or closes; over TLS the
    // slot is taken before the TLS handshake, which counts against the same deadline.
    const slots = new Map<string, PendingSlot>();
    const keyOf = (s: net.Socket) => `${s.remoteAddress ?? "?"}|${s.remotePort ?? "?"}`;
    const onTcp = (raw: net.Socket): PendingSlot | null => {
      if (this.stopped) {
        raw.destroy();
        return null;
      }
      let socket = raw;
      const slot = this.pending.admit(raw.remoteAddress, () => {
        this.droppedPending();
        socket.destroy();
        raw.destroy();
      });
      if (t) {
        raw.once("close", () => slot.release());
        const key = keyOf(raw);
        slots.set(key, slot);
        raw.once("close", () => slots.delete(key));
        return slot;
      }
      // Plain TCP sockets arrive paused and read through onread from here on (the handle moves
      // to a new socket; the accepted one is closed empty).
      const router = new ReadRouter();
      socket = readWith(raw, router);
      socket.once("close", () => slot.release());
      this.adopt(socket, "acceptor", router, slot);
      return slot;
    };
    const server = t
      ? tls.createServer(
          {
            cert: t.cert,
            key: t.key,
            ca: t.ca,
            requestCert: true,
            rejectUnauthorized: true,
            handshakeTimeout: this.o.authTimeoutMs ?? PEER_AUTH_TIMEOUT_MS,
          },
          (s: tls.TLSSocket) => {
            const slot = slots.get(keyOf(s));
            if (this.stopped || !slot) {
              s.destroy();
              return;
            }
            s.once("close", () => slot.release());
            this.adopt(s, "acceptor", null, slot);
          },
        )
      : net.createServer({ pauseOnConnect: true }, onTcp);
    if (t) server.on("connection", onTcp);
    server.on("tlsClientError", (e: Error) =>
      this.o.logger.warn({ err: e.message }, "refused peer TLS connection"),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.listen.port, this.o.listen.host, () => {
        server.off("error", reject);
        // Errors after the start (EMFILE when accepting with no descriptor left) must not end the
        // process: the listener stays, and node a's next dial gets through once descriptors free up.
        server.on("error", (err: Error) => this.o.logger.warn({ err }, "peer listener error"));
        resolve();
      });
    });
  }

  /** The bound listen address (node b). */
  address(): HostPort | null {
    const a = this.server?.address();
    return a && typeof a === "object" ? { host: a.address, port: a.port } : null;
  }

  /** Logs that strangers are filling the pending slots (at most every 30 s). */
  private droppedPending(): void {
    const now = Date.now();
    const level = now - this.lastDropLog > 30_000 ? "warn" : "debug";
    if (level === "warn") this.lastDropLog = now;
    this.o.logger[level](
      { dropped: this.pending.dropped, held: this.pending.size },
      "peer listener: all slots for unauthenticated connections taken; dropped one to admit a new connection",
    );
  }

  private adopt(
    socket: net.Socket,
    role: "dialer" | "acceptor",
    router: ReadRouter | null,
    slot: PendingSlot | null = null,
  ): void {
    const remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
    const c = new PeerConnection({
      socket,
      role,
      node: this.o.node,
      secrets: this.secrets,
      logger: this.o.logger,
      heartbeatMs: this.o.heartbeatMs,
      timeoutMs: this.o.timeoutMs,
      ...(this.o.leaseMs !== undefined ? { leaseMs: this.o.leaseMs } : {}),
      ...(this.o.authTimeoutMs !== undefined ? { authTimeoutMs: this.o.authTimeoutMs } : {}),
      ...(slot ? { onHello: () => slot.helloSeen() } : {}),
      onread: router !== null,
      ...(this.o.protection ? { protection: this.o.protection } : {}),
    });
    router?.attach(c);
    c.ready.then(
      () => {
        slot?.release();
        if (this.stopped) {
          c.close("shutting down");
          return;
        }
        this.o.logger.info(
          { peer: remote, role, version: c.version, records: c.protection },
          "peer authenticated",
        );
        this.failure = null;
        this.unansweredHellos = 0;
        this.current = c;
        this.o.onConnection(c);
      },
      (e: Error) => {
        slot?.release();
        const reason = this.refusalOf(c, e);
        // A partner retrying with a wrong secret would repeat this twice a second: log changes, and then every 30 s.
        const now = Date.now();
        const repeat = this.lastRefusal?.reason === reason && now - this.lastRefusal.at < 30_000;
        if (!repeat) this.lastRefusal = { reason, at: now };
        const auth = c.authFailure !== null || this.unansweredHellos >= UNANSWERED_HELLOS;
        this.o.logger[repeat ? "debug" : "warn"](
          { peer: remote, role, err: reason },
          auth ? `peer connection refused: ${reason}` : "peer connection refused",
        );
        if (role === "dialer") this.scheduleDial();
      },
    );
  }

  /** Why a connection did not authenticate; records authentication failures for the status. */
  private refusalOf(c: PeerConnection, e: Error): string {
    const f: PeerAuthRefusal | null = c.authFailure;
    if (f) {
      this.unansweredHellos = 0;
      this.authFailed(f.kind, f.message);
      return f.message;
    }
    if (!c.closedBeforeReply) {
      this.unansweredHellos = 0;
      return e.message;
    }
    this.unansweredHellos++;
    if (this.unansweredHellos < UNANSWERED_HELLOS) return e.message;
    // A node of an older version closes the connection on this version's hello without a word. A
    // link cut in between can look the same, so the status says "may".
    const reason =
      `the partner closed the connection without answering hello ${this.unansweredHellos} times in a ` +
      `row: it may speak an older peer protocol than ${MIN_PEER_PROTOCOL_VERSION} (upgrade both nodes), or ` +
      `not be node ${c.peerNode}`;
    this.authFailed("version", reason);
    return reason;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dialing?.destroy();
    this.current?.close("shutting down");
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
