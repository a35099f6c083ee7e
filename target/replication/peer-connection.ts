/**
 * One authenticated peer link over a TCP (or TLS) socket: framing, mutual authentication,
 * request/reply matching, heartbeats and loss detection, and a send queue with priorities
 * (control and heartbeats before writes before resync) so bulk traffic never delays
 * liveness or foreground I/O by more than what is already in the socket buffer.
 *
 * Read leases (self-fencing). A node may serve reads from its copy while linked only while it
 * holds a lease its partner granted: every heartbeat carries a sequence number and the highest
 * sequence number received from the partner; when the partner acknowledges heartbeat n, this
 * node's lease runs until the moment it *sent* n plus `leaseMs`. The partner received n after
 * that moment and acknowledges nothing newer once the link is gone, so after losing the link it
 * knows this node's lease ended by the time it received the last heartbeat plus `leaseMs`
 * (`partnerLeaseEndsBy`): it asks the witness only after that, and a cut-off node has stopped
 * serving reads before its partner can start writing alone. Times are monotonic
 * (performance.now), so a clock step cannot extend a lease.
 *
 * Protection. Until both ends are authenticated only the hellos cross, in plain frames of at most
 * PRE_AUTH_MAX_FRAME_BYTES, one at a time. From the moment a node has authenticated its partner,
 * everything it sends and receives travels in sealed records (frame-seal.ts) under session keys
 * derived from the secrets both proved and both handshake nonces (peer-keys.ts): a record that
 * does not open (altered, injected, replayed, reordered or dropped on the way) closes the link and
 * none of its frames is applied. Over TLS the records are sealed all the same: the handshake is not
 * bound to the TLS session, and the records make the pair's own secret, not only a certificate of
 * the CA, what it takes to read or write on the link.
 */
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Logger } from "../log.js";
import {
  FrameAuthError,
  RecordOpener,
  RecordSealer,
  ALONE_FRAME_BYTES,
  RECORD_TARGET_BYTES,
} from "./frame-seal.js";
import {
  chooseVersion,
  chosenVersionRefusal,
  commonSecrets,
  newNonce,
  OUR_VERSIONS,
  peerProofs,
  provenSecret,
  secretMismatchText,
  type PeerAuthFailureKind,
} from "./peer-auth.js";
import { sessionKeys } from "./peer-keys.js";
import type { PeerSecrets } from "./peer-secrets.js";
import { MAX_BATCHED_ACKS } from "./binary-bodies.js";
import {
  HEADER_BYTES,
  PRE_AUTH_MAX_FRAME_BYTES,
  encodeAckBatch,
  encodeFrame,
  frameBytes,
  FrameDecoder,
  LINK_PROTECTION_VERSION,
  ProtocolError,
  type Body,
  type LinkProtection,
  type Message,
  type MessageOf,
  type MessageType,
} from "./protocol.js";
import type { NodeName } from "./witness.js";

export const enum Priority {
  control = 0,
  write = 1,
  resync = 2,
}

export class PeerLostError extends Error {
  constructor(reason: string) {
    super(`peer lost: ${reason}`);
    this.name = "PeerLostError";
  }
}

/** The partner could not be authenticated (another secret, protocol version or node name). */
export class PeerAuthRefusal extends ProtocolError {
  constructor(
    readonly kind: PeerAuthFailureKind,
    message: string,
  ) {
    super(message);
    this.name = "PeerAuthRefusal";
  }
}

/** The peer answered a request with an error. */
export class PeerRequestError extends Error {
  constructor(
    message: string,
    readonly unavailable?: "transitioning" | "unavailable" | "standby",
  ) {
    super(message);
    this.name = "PeerRequestError";
  }
}

export interface PeerConnectionOptions {
  socket: Socket;
  /** "dialer" speaks first; node a dials, node b accepts */
  role: "dialer" | "acceptor";
  node: NodeName;
  /** the secrets this node accepts; the handshake proves all of them and needs one in common */
  secrets: PeerSecrets;
  logger: Logger;
  heartbeatMs: number;
  timeoutMs: number;
  /** how long an acknowledged heartbeat lets this node serve reads (default: two thirds of timeoutMs) */
  leaseMs?: number;
  /** authentication must finish within this (default PEER_AUTH_TIMEOUT_MS) */
  authTimeoutMs?: number;
  /** the acceptor received a well-formed hello of this protocol version (peer-slots.ts) */
  onHello?: () => void;
  /** a request without a reply for this long means the partner is stuck: the link is closed (default 30 s) */
  requestTimeoutMs?: number;
  /**
   * The socket reads through `onread` (peer-link.ts routes it) and hands every read to readTarget
   * / onRead instead of emitting data events: large payloads then land straight in their buffers.
   */
  onread?: boolean;
  /**
   * What this node asks of the link's records (default "encrypted"). The link's records are
   * authenticated only (frame-seal.ts) when both nodes ask for that and speak peer protocol 7.
   */
  protection?: LinkProtection;
}

/** Reads land here once authenticated (reused from read to read). */
const SCRATCH_BYTES = 256 * 1024;
/** Reads land here before: the hellos are small, and a stranger gets no more memory than this. */
export const PRE_AUTH_READ_BYTES = 8 * 1024;
/** How long the handshake may take from the connection on, whatever the partner sends. */
export const PEER_AUTH_TIMEOUT_MS = 3000;
const EMPTY = Buffer.alloc(0);
const HELLOS: ReadonlySet<MessageType> = new Set<MessageType>(["hello", "helloReply", "helloFinish"]);

/** Bytes queued in the socket above which we stop handing it more (keeps heartbeats prompt). */
const SOCKET_HIGH_WATER = 512 * 1024;

/**
 * Plain acknowledgements ({ ok: true }, no data) queued one after the other: they leave as one
 * frame (binary-bodies.ts). At depth 32 a node acknowledges dozens of writes per pass of its send
 * queue, and one frame for all of them is one header to build, seal and decode instead of dozens.
 */
class AckBatch {
  constructor(readonly ids: number[]) {}
}

type Queued = Buffer[] | AckBatch;

function queuedBytes(q: Queued): number {
  return q instanceof AckBatch ? HEADER_BYTES + 4 * q.ids.length : frameBytes(q);
}

interface Pending {
  resolve: (m: MessageOf<"reply">) => void;
  reject: (e: Error) => void;
  type: MessageType;
  sentAt: number;
}

export class PeerConnection {
  private handler: ((m: Message) => void) | null = null;
  /** Messages that arrived before a handler was set (they can share a TCP segment with the last hello). */
  private early: Message[] = [];
  /** Called once when the link is gone. */
  onClosed: (reason: string) => void = () => undefined;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private authenticated = false;
  private closedReason: string | null = null;
  /** the handshake's plain frames, at most PRE_AUTH_MAX_FRAME_BYTES each */
  private readonly plain: FrameDecoder;
  /** seals what this node sends, opens what it receives: set once it authenticated the partner */
  private sealer: RecordSealer | null = null;
  private opener: RecordOpener | null = null;
  private readBuffer: Buffer | null;
  private readonly queues: Queued[][] = [[], [], []];
  private pumpScheduled = false;
  /** Resolved right after the scheduled pump has handed the queued frames to the socket. */
  private pumped: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastHeard = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  /** heartbeats: the last sequence number sent, when each recent one left, the highest received */
  private hbSeq = 0;
  private readonly hbSentAt = new Map<number, number>();
  private hbAck = 0;
  private hbAckReceivedAt = 0;
  /** when the heartbeat the partner acknowledged most recently left (0: none yet) */
  private leaseBase = 0;
  /** Called when the read lease became valid again (it lapsed, or was never granted). */
  onLeaseRenewed: () => void = () => undefined;
  private dialerNonce = "";
  private acceptorNonce = "";
  /** The secrets this node proves and accepts in this handshake (read once, when it starts). */
  private secrets: Buffer[] = [];
  /** The peer protocol version of this connection (0 until the handshake chose it). */
  version = 0;
  private prepareScheduled = false;
  /** What the partner asked of the records in its hello ("encrypted" before protocol 7). */
  private partnerProtection: LinkProtection = "encrypted";
  /** Why authentication failed, when it did. */
  authFailure: PeerAuthRefusal | null = null;
  /** The dialer sent hello and the connection closed before any answer (an older partner does this). */
  closedBeforeReply = false;
  readonly peerNode: NodeName;
  readonly log: Logger;

  constructor(private readonly o: PeerConnectionOptions) {
    this.peerNode = o.node === "a" ? "b" : "a";
    this.log = o.logger;
    this.ready = new Promise<void>((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => undefined);
    this.plain = new FrameDecoder({
      chunksReused: !!o.onread,
      limit: { bytes: PRE_AUTH_MAX_FRAME_BYTES, what: "before authentication" },
    });
    this.readBuffer = o.onread ? Buffer.allocUnsafeSlow(PRE_AUTH_READ_BYTES) : null;
    const s = o.socket;
    s.setNoDelay(true);
    if (!o.onread) s.on("data", (chunk: Buffer) => this.onData(chunk));
    s.on("drain", () => this.pump());
    s.on("error", (e) => this.close(`socket error: ${e.message}`));
    s.on("close", () => this.close("connection closed by peer"));
    this.timers.push(
      setTimeout(() => {
        if (!this.authenticated) this.close("authentication timed out");
      }, o.authTimeoutMs ?? PEER_AUTH_TIMEOUT_MS),
    );
    if (o.role === "dialer") {
      this.dialerNonce = newNonce();
      this.send("hello", {
        node: o.node,
        nonce: this.dialerNonce,
        version: OUR_VERSIONS.max,
        // Without a range the hello is the one older nodes read, so they refuse it clearly.
        ...(OUR_VERSIONS.min < OUR_VERSIONS.max ? { minVersion: OUR_VERSIONS.min } : {}),
      });
    }
  }

  private get ownProtection(): LinkProtection {
    return this.o.protection ?? "encrypted";
  }

  /** What the link's records do: authenticated only when both nodes asked for that. */
  get protection(): LinkProtection {
    return this.ownProtection === "authenticated" && this.partnerProtection === "authenticated"
      ? "authenticated"
      : "encrypted";
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  get lastHeardMs(): number {
    return Date.now() - this.lastHeard;
  }

  get remote(): string {
    return `${this.o.socket.remoteAddress ?? "?"}:${this.o.socket.remotePort ?? "?"}`;
  }

  private get leaseMs(): number {
    return this.o.leaseMs ?? Math.floor((this.o.timeoutMs * 2) / 3);
  }

  /** Whether the partner's acknowledgements let this node serve reads now. */
  leaseValid(now = performance.now()): boolean {
    return this.leaseBase > 0 && now < this.leaseBase + this.leaseMs;
  }

  /**
   * The monotonic time by which any read lease this node granted the partner has ended: the
   * partner's lease counts from a heartbeat it sent before this node received it.
   */
  partnerLeaseEndsBy(): number {
    return this.hbAckReceivedAt > 0 ? this.hbAckReceivedAt + this.leaseMs : 0;
  }

  private sendHeartbeat(): void {
    const seq = ++this.hbSeq;
    const now = performance.now();
    this.hbSentAt.set(seq, now);
    // Only recent heartbeats can still be acknowledged in time to matter.
    for (const [s, at] of this.hbSentAt) {
      if (now - at <= this.leaseMs) break;
      this.hbSentAt.delete(s);
    }
    this.send("heartbeat", { seq, ack: this.hbAck });
  }

  private onHeartbeat(m: MessageOf<"heartbeat">): void {
    const now = performance.now();
    if (m.body.ack > this.hbSeq) throw new ProtocolError(`heartbeat acknowledges ${m.body.ack}, never sent`);
    if (m.body.seq > this.hbAck) {
      const first = this.hbAck === 0;
      this.hbAck = m.body.seq;
      this.hbAckReceivedAt = now;
      // Acknowledge the first one at once, so a new link can serve reads without a period's delay.
      if (first) this.sendHeartbeat();
    }
    const sentAt = this.hbSentAt.get(m.body.ack);
    if (sentAt !== undefined && sentAt > this.leaseBase) {
      const lapsed = !this.leaseValid(now);
      this.leaseBase = sentAt;
      if (lapsed && this.leaseValid(now)) this.onLeaseRenewed();
    }
  }

  /** Sends a one-way message (or a reply when `id` is given). */
  send<T extends MessageType>(
    type: T,
    body: Body<T>,
    data?: Buffer,
    priority = Priority.control,
    id = 0,
  ): void {
    if (this.closed) return;
    const frame = encodeFrame(type, id, body, data);
    if (!this.sealer) {
      if (HELLOS.has(type)) {
        // The handshake's frames leave at once, in plain, before any sealed record.
        this.o.socket.write(frame.length === 1 ? frame[0]! : Buffer.concat(frame));
        return;
      }
      // Anything else waits in its queue for the session keys.
    }
    this.queues[priority]!.push(frame);
    this.schedulePump();
  }

  /**
   * Frames queued in the same turn of the event loop leave in one writev. With `afterMicrotasks`
   * (acknowledgements) they leave once the microtasks queued so far have run instead: the
   * replies to all the writes of one received record are queued by then (each write's handler
   * resolved in that record's turn), and the acknowledgement does not wait for the rest of the
   * turn (tens of µs on the path of every mirrored write).
   */
  private schedulePump(afterMicrotasks = false): void {
    // At queue depth 32 a write per frame cost a quarter of the sequencer's CPU in syscalls.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      if (afterMicrotasks) queueMicrotask(this.pumpNow);
      else setImmediate(this.pumpNow);
    }
  }

  private readonly pumpNow = (): void => {
    this.pumpScheduled = false;
    this.pump();
    const p = this.pumped;
    this.pumped = null;
    p?.resolve();
  };

  /**
   * Resolves once the frames queued so far were handed to the socket (at once when none wait).
   * A mirrored write waits for this before writing its local copy, so the partner writes its copy
   * while this node writes its own instead of after it.
   */
  sent(): Promise<void> {
    if (!this.pumpScheduled) return Promise.resolve();
    if (!this.pumped) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.pumped = { promise, resolve };
    }
    return this.pumped.promise;
  }

  reply(to: number, body: Body<"reply">, data?: Buffer, priority = Priority.write): void {
    const plain =
      body.ok && body.result === undefined && body.error === undefined && body.unavailable === undefined;
    if (!plain || (data && data.length > 0) || !this.sealer) {
      this.send("reply", body, data, priority, to);
      return;
    }
    if (this.closed) return;
    // Joins the acknowledgements queued right before it, if nothing was queued in between.
    const q = this.queues[priority]!;
    const last = q[q.length - 1];
    if (last instanceof AckBatch && last.ids.length < MAX_BATCHED_ACKS) last.ids.push(to);
    else q.push(new AckBatch([to]));
    this.schedulePump(true);
  }

  /** Sends a request and resolves with the peer's reply; rejects with PeerLostError when the link goes. */
  request<T extends MessageType>(
    type: T,
    body: Body<T>,
    data?: Buffer,
    priority = Priority.write,
  ): Promise<MessageOf<"reply">> {
    if (this.closed) return Promise.reject(new PeerLostError(this.closedReason!));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    return new Promise<MessageOf<"reply">>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, type, sentAt: Date.now() });
      this.send(type, body, data, priority, id);
    });
  }

  /**
   * Hands a received message's data back for reuse once it has been applied and nothing refers
   * to it any more (large payloads come from a pool; small ones are left to the collector).
   */
  releaseData(data: Buffer): void {
    this.opener?.release(data);
  }

  /** Sets the handler for every authenticated message that is not a heartbeat or a reply. */
  setHandler(fn: (m: Message) => void): void {
    this.handler = fn;
    const early = this.early;
    this.early = [];
    for (const m of early) if (!this.closed) fn(m);
  }

  /** Starts heartbeats and loss detection (after authentication). */
  private startLiveness(): void {
    this.timers.push(
      setInterval(() => this.sendHeartbeat(), this.o.heartbeatMs),
      setInterval(
        () => {
          if (this.lastHeardMs > this.o.timeoutMs)
            this.close(`no message from peer for ${this.lastHeardMs} ms`);
          // Requests are kept in sending order: the first one is the oldest.
          const oldest = this.pending.values().next().value;
          const limit = this.o.requestTimeoutMs ?? 30_000;
          if (oldest && Date.now() - oldest.sentAt > limit)
            this.close(`no reply to ${oldest.type} within ${limit} ms`);
        },
        Math.max(50, Math.floor(this.o.heartbeatMs / 2)),
      ),
    );
  }

  /**
   * Hands queued frames to the socket in priority order, sealed: the frames taken in one go share
   * a record (up to RECORD_TARGET_BYTES), a large frame gets one of its own. Records are sealed
   * here, in the order they enter the socket, because their numbers are their nonces.
   */
  private pump(): void {
    const s = this.o.socket;
    const sealer = this.sealer;
    if (this.closed || s.destroyed || !sealer) return;
    s.cork();
    try {
      while (s.writableLength < SOCKET_HIGH_WATER) {
        const parts: Buffer[] = [];
        let bytes = 0;
        for (;;) {
          const q = this.queues.find((x) => x.length > 0);
          if (!q) break;
          const n = queuedBytes(q[0]!);
          if (bytes > 0 && (n >= ALONE_FRAME_BYTES || bytes + n > RECORD_TARGET_BYTES)) break;
          const next = q.shift()!;
          if (next instanceof AckBatch) parts.push(encodeAckBatch(next.ids));
          else for (const part of next) parts.push(part);
          bytes += n;
          if (n >= ALONE_FRAME_BYTES) break;
        }
        if (bytes === 0) return;
        for (const part of sealer.seal(parts, bytes)) s.write(part);
      }
    } finally {
      s.uncork();
      this.schedulePrepare();
    }
  }

  /**
   * Once the link is idle again, makes the ciphers of the next record each way ahead of time
   * (frame-seal.ts): their setup then waits for no write.
   *
   * It runs one turn of the event loop later than it is asked for: what a received record set
   * off in this turn (the acknowledgement's pump, the iSCSI response to the initiator) is queued
   * after the request and would otherwise wait for the ciphers (tens of µs each when cold).
   */
  private schedulePrepare(): void {
    if (this.prepareScheduled) return;
    this.prepareScheduled = true;
    setImmediate(() =>
      setImmediate(() => {
        this.prepareScheduled = false;
        if (this.closed) return;
        this.sealer?.prepare();
        this.opener?.prepare();
      }),
    );
  }

  /** Where the socket's next read goes (sockets reading through onread). */
  readTarget(): Buffer {
    const scratch = (this.readBuffer ??= Buffer.allocUnsafeSlow(PRE_AUTH_READ_BYTES));
    return this.opener && !this.closed ? this.opener.readTarget(scratch) : scratch;
  }

  /** n bytes were read into `target` (from readTarget); they are valid only during this call. */
  onRead(target: Uint8Array, n: number): void {
    const scratch = this.readBuffer;
    if (!this.opener || !scratch) {
      this.received(Buffer.from(target.buffer, target.byteOffset, n));
      return;
    }
    // The scratch buffer, or straight into a large payload's buffer (RecordOpener.readTarget).
    if (this.closed) return;
    this.lastHeard = Date.now();
    this.opened((o) => o.pushRead(target, n, scratch));
  }

  private onData(chunk: Buffer): void {
    this.received(chunk);
  }

  private received(chunk: Buffer): void {
    if (this.closed) return;
    this.lastHeard = Date.now();
    let sealed: Buffer | null = chunk;
    if (!this.opener) sealed = this.receivedBeforeAuth(chunk);
    if (sealed === null || sealed.length === 0 || this.closed) return;
    this.opened((o) => o.push(sealed));
  }

  /** Delivers the messages `open` takes out of the opener, or closes the link on what it refuses. */
  private opened(open: (o: RecordOpener) => Message[]): void {
    let messages: Message[];
    try {
      messages = open(this.opener!);
    } catch (e) {
      this.refuseReceived(e as Error);
      return;
    }
    for (const m of messages) if (!this.deliver(m)) return;
    if (messages.length > 0) this.schedulePrepare();
  }

  /**
   * The handshake's frames, one at a time: the frame that authenticates the partner may be
   * followed in the same read by its first sealed records, returned to be opened.
   */
  private receivedBeforeAuth(chunk: Buffer): Buffer | null {
    let next = chunk;
    for (;;) {
      let m: Message | undefined;
      try {
        m = this.plain.push(next, 1)[0];
      } catch (e) {
        this.refuseReceived(e as Error);
        return null;
      }
      next = EMPTY;
      if (!m || !this.deliver(m)) return null;
      if (this.opener) return this.plain.takeRest();
    }
  }

  private refuseReceived(e: Error): void {
    if (e instanceof FrameAuthError) {
      this.log.error(
        { peer: this.remote, err: e.message },
        "refused a sealed record from the peer that failed authentication; closing the link, nothing of it was applied",
      );
      this.close(`frame authentication failed: ${e.message}`);
      return;
    }
    this.log[this.authenticated ? "warn" : "debug"](
      { peer: this.remote, err: e.message },
      "refused malformed data from peer; closing link",
    );
    this.close(`protocol error: ${e.message}`);
  }

  /** Dispatches one message; false when the link is closed (then or before). */
  private deliver(m: Message): boolean {
    if (this.closed) return false;
    try {
      this.dispatch(m);
    } catch (e) {
      if (e instanceof PeerAuthRefusal) this.authFailure = e;
      const msg = e instanceof ProtocolError ? e.message : `handler failed: ${(e as Error).message}`;
      this.log[this.authenticated ? "warn" : "debug"](
        { peer: this.remote, type: m.type, err: msg },
        "refused message from peer; closing link",
      );
      this.close(msg);
      return false;
    }
    return !this.closed;
  }

  private dispatch(m: Message): void {
    if (!this.authenticated) {
      this.authStep(m);
      return;
    }
    switch (m.type) {
      case "hello":
      case "helloReply":
      case "helloFinish":
        throw new ProtocolError(`unexpected ${m.type} after authentication`);
      case "heartbeat":
        this.onHeartbeat(m);
        return;
      case "reply": {
        const p = this.pending.get(m.id);
        if (!p) throw new ProtocolError(`reply to unknown request ${m.id}`);
        this.pending.delete(m.id);
        if (m.body.ok) p.resolve(m);
        else p.reject(new PeerRequestError(m.body.error ?? "peer refused the request", m.body.unavailable));
        return;
      }
      default:
        if (this.handler) this.handler(m);
        else this.early.push(m);
    }
  }

  private authStep(m: Message): void {
    const o = this.o;
    if (o.role === "acceptor" && m.type === "hello" && !this.dialerNonce) {
      const choice = chooseVersion({ min: m.body.minVersion ?? m.body.version, max: m.body.version });
      if ("refusal" in choice) throw new PeerAuthRefusal("version", choice.refusal);
      this.checkPeerNode(m.body.node);
      this.version = choice.version;
      o.onHello?.();
      this.dialerNonce = m.body.nonce;
      this.acceptorNonce = newNonce();
      this.secrets = o.secrets.accepted();
      this.send("helloReply", {
        node: o.node,
        nonce: this.acceptorNonce,
        macs: peerProofs(this.secrets, o.node, this.dialerNonce, this.acceptorNonce),
        version: this.version,
        ...(this.version >= LINK_PROTECTION_VERSION ? { records: this.ownProtection } : {}),
      });
      return;
    }
    if (o.role === "dialer" && m.type === "helloReply" && !this.acceptorNonce) {
      const refusal = chosenVersionRefusal(m.body.version);
      if (refusal) throw new PeerAuthRefusal("version", refusal);
      this.checkPeerNode(m.body.node);
      this.version = m.body.version;
      this.partnerProtection = m.body.records ?? "encrypted";
      this.acceptorNonce = m.body.nonce;
      this.secrets = o.secrets.accepted();
      const proven = provenSecret(
        this.secrets,
        this.peerNode,
        this.dialerNonce,
        this.acceptorNonce,
        m.body.macs,
      );
      // Sent even when the acceptor's proofs failed, so that it learns of the mismatch too.
      this.send("helloFinish", {
        macs: peerProofs(this.secrets, o.node, this.dialerNonce, this.acceptorNonce),
        ...(this.version >= LINK_PROTECTION_VERSION ? { records: this.ownProtection } : {}),
      });
      if (!proven) {
        this.refuseAfterSending(
          new PeerAuthRefusal("secret", secretMismatchText(this.secrets.length, o.secrets.source)),
        );
        return;
      }
      o.secrets.proven(proven);
      this.onAuthenticated(m.body.macs);
      return;
    }
    if (o.role === "acceptor" && m.type === "helloFinish" && this.acceptorNonce) {
      this.partnerProtection = m.body.records ?? "encrypted";
      const proven = provenSecret(
        this.secrets,
        this.peerNode,
        this.dialerNonce,
        this.acceptorNonce,
        m.body.macs,
      );
      if (!proven)
        throw new PeerAuthRefusal("secret", secretMismatchText(this.secrets.length, o.secrets.source));
      o.secrets.proven(proven);
      this.onAuthenticated(m.body.macs);
      return;
    }
    throw new ProtocolError(`unexpected ${m.type} before authentication`);
  }

  private checkPeerNode(node: NodeName): void {
    if (node !== this.peerNode)
      throw new PeerAuthRefusal("identity", `peer says it is node ${node}; expected ${this.peerNode}`);
  }

  /** Refuses the partner once what is queued (the last hello message) has left. */
  private refuseAfterSending(e: PeerAuthRefusal): void {
    this.authFailure = e;
    void this.sent().then(() => {
      if (this.closed) return;
      const s = this.o.socket;
      const timer = setTimeout(() => this.close(e.message), 1000);
      s.end(() => {
        clearTimeout(timer);
        this.close(e.message);
      });
    });
  }

  /** The partner proved a secret with `proofs`: from here on every frame is sealed, both ways. */
  private onAuthenticated(proofs: readonly string[]): void {
    const common = commonSecrets(this.secrets, this.peerNode, this.dialerNonce, this.acceptorNonce, proofs);
    // Both ends derive their keys with the protection they agreed on, so a hello altered on the
    // way to weaken it gives the two ends different keys: the first record fails and the link closes.
    const protection = this.protection;
    const keys = sessionKeys(common, this.o.node, this.dialerNonce, this.acceptorNonce, protection);
    this.sealer = new RecordSealer(keys.send, { protection });
    this.opener = new RecordOpener(
      keys.receive,
      new FrameDecoder({ chunksReused: protection === "authenticated" && !!this.o.onread }),
      { protection },
    );
    this.secrets = [];
    if (this.o.onread) this.readBuffer = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
    this.authenticated = true;
    this.startLiveness();
    this.sendHeartbeat();
    this.readyResolve();
  }

  close(reason: string): void {
    if (this.closedReason !== null) return;
    if (this.o.role === "dialer" && !this.authenticated && !this.acceptorNonce && !this.authFailure)
      this.closedBeforeReply = reason === "connection closed by peer";
    this.closedReason = reason;
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.o.socket.destroy();
    for (const q of this.queues) q.length = 0;
    // Listeners learn of the loss before any request fails, so a failed request can
    // already find the loss being handled.
    this.onClosed(reason);
    const err = new PeerLostError(reason);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.readyReject(err);
  }
}
