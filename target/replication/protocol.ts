/**
 * The peer link's wire format. Every frame is
 *
 *   magic u32 "HSN1" | type u8 | flags u8 | reserved u16 (0) | id u32 | bodyLength u32 | dataLength u32
 *   body (`bodyLength` bytes) | data (`dataLength` bytes)
 *
 * all big-endian. `id` pairs a reply with its request (0 for one-way messages). The body is JSON
 * (UTF-8) validated with zod at the boundary, except when `flags` has BINARY_BODY: then it is the
 * type's fixed binary layout (binary-bodies.ts; only the frames of every mirrored write: write,
 * forwardWrite and reply), checked field by field by hand-written code as strict as the schema.
 * Lengths are bounded before anything is buffered, so a peer sending garbage is refused with a
 * ProtocolError and never applied.
 *
 * Only the handshake's frames (hello, helloReply, helloFinish) cross the wire like this, and each
 * may announce at most PRE_AUTH_MAX_FRAME_BYTES. Once both ends are authenticated, every frame
 * travels inside a sealed record (frame-seal.ts): encrypted and authenticated with a key of the
 * session, so a frame altered, injected, replayed, reordered or dropped on the way is refused.
 */
import { z } from "zod";
import { BufferPool } from "../store/buffer-pool.js";
import {
  ACK_BATCH,
  BINARY_BODY,
  FRAME_FLAGS,
  MAX_BATCHED_ACKS,
  binaryBodyLength,
  readBinaryBody,
  writeBinaryBody,
} from "./binary-bodies.js";
import { Slab } from "../store/slab.js";
import { VerifyRecordSchema } from "./verify-record.js";

export const MAGIC = 0x48534e31;
/**
 * Version 2: hellos carry one MAC per accepted secret; heartbeats carry sequence numbers and
 * acknowledgements (read leases). Version 3: every frame after the handshake travels in a sealed
 * record (AES-256-GCM with per-direction session keys, frame-seal.ts). The hellos keep version 2's
 * format, so a node of either version reads the other's hello and refuses its version clearly.
 * Version 4: the LUN grows live (`grow`, `forwardGrow`), and the handshake grows the smaller node
 * to its partner's size instead of refusing a partner of another size.
 * Version 5: online verify (`verifyHash`, `verifyRecord`, `verifyRepair`, `forwardVerify`).
 * Version 6: the frames of mirrored writes (write, forwardWrite, reply) have binary bodies, and
 * several acknowledgements share one reply frame (binary-bodies.ts); hellos carry the range of
 * versions each node speaks and the acceptor picks the highest common one (peer-auth.ts).
 * Its `syncState` also says whether the node has been linked since its process started
 * (`keptRunning`): with the same generation on both, a node that kept running while its partner
 * restarted is the resync source (sync-direction.ts).
 * Version 7: helloReply and helloFinish say what each node asks of the records (`records`); when
 * both ask for "authenticated", records are authenticated but not encrypted (frame-seal.ts).
 */
export const PEER_PROTOCOL_VERSION = 7;
/** The first version whose hellos carry `records`. */
export const LINK_PROTECTION_VERSION = 7;
/** What a record does to its frames: seals them (AES-256-GCM) or only authenticates them (GMAC). */
export const LinkProtectionSchema = z.enum(["encrypted", "authenticated"]);
export type LinkProtection = z.infer<typeof LinkProtectionSchema>;
/** The oldest peer protocol this node speaks (the hellos announce [MIN, PEER_PROTOCOL_VERSION]). */
export const MIN_PEER_PROTOCOL_VERSION = 6;
/** Secrets one node accepts at once (current, previous, and room for one more): proofs per hello. */
export const MAX_PEER_SECRETS = 3;
export const HEADER_BYTES = 20;
export const MAX_JSON_BYTES = 64 * 1024;
/** Largest binary payload: writes (the SCSI layer bounds them well below this) and bitmaps. */
export const MAX_DATA_BYTES = 64 * 1024 * 1024;
/**
 * What one frame (JSON and data) may announce before authentication: the hellos need a few hundred
 * bytes, so a stranger's header announcing more closes the connection before anything is buffered.
 */
export const PRE_AUTH_MAX_FRAME_BYTES = 4096;

const node = z.enum(["a", "b"]);
const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
const offset = z.number().int().nonnegative();
const length = z.number().int().positive();
const genId = hex(8);

export const GenerationViewSchema = z
  .object({
    current: genId,
    bitmapUuid: genId.nullable(),
    history: z.array(genId).max(8),
    consistent: z.boolean(),
    syncSource: genId.nullable(),
    initialized: z.boolean(),
  })
  .strict();

/** JSON bodies per message type. */
export const MessageBodies = {
  /**
   * `version` is the highest peer protocol the dialer speaks and `minVersion` the lowest (absent in
   * the hellos of versions before 6, which speak only `version`). Any versions are accepted here so
   * that a partner without one in common is refused with a clear reason by the handshake
   * (peer-auth.ts), not as a malformed body.
   */
  hello: z
    .object({
      node,
      nonce: hex(32),
      version: z.number().int().positive(),
      minVersion: z.number().int().positive().optional(),
    })
    .strict(),
  /**
   * one MAC per secret the sender accepts (peer-auth.ts); `version`: the version the acceptor chose
   * for this connection, the highest both speak
   */
  helloReply: z
    .object({
      node,
      nonce: hex(32),
      macs: z.array(hex(32)).min(1).max(MAX_PEER_SECRETS),
      version: z.number().int().positive(),
      /** what the acceptor asks of the records (from version 7; before it, "encrypted") */
      records: LinkProtectionSchema.optional(),
    })
    .strict(),
  /** `records`: what the dialer asks of the records (from version 7) */
  helloFinish: z
    .object({
      macs: z.array(hex(32)).min(1).max(MAX_PEER_SECRETS),
      records: LinkProtectionSchema.optional(),
    })
    .strict(),
  /**
   * `seq` numbers this node's heartbeats; `ack` is the highest `seq` received from the partner.
   * An acknowledged heartbeat renews the sender's read lease (peer-connection.ts).
   */
  heartbeat: z.object({ seq: z.number().int().positive(), ack: z.number().int().nonnegative() }).strict(),
  syncState: z
    .object({
      generation: GenerationViewSchema,
      regionSize: length,
      sizeBytes: length,
      splitBrainDiscard: z.boolean(),
      /** linked with the partner since this node's process started */
      keptRunning: z.boolean(),
    })
    .strict(),
  syncReady: z.object({}).strict(),
  write: z.object({ offset, fua: z.boolean() }).strict(),
  unmap: z.object({ offset, length }).strict(),
  flush: z.object({}).strict(),
  forwardWrite: z.object({ offset, fua: z.boolean() }).strict(),
  forwardUnmap: z.object({ offset, length }).strict(),
  /** data holds the expected bytes followed by the new bytes */
  forwardCompareAndWrite: z.object({ offset }).strict(),
  read: z.object({ offset, length }).strict(),
  resyncChunk: z.object({ offset }).strict(),
  resyncDone: z.object({ current: genId }).strict(),
  reply: z
    .object({
      ok: z.boolean(),
      result: z.number().int().optional(),
      error: z.string().max(1000).optional(),
      unavailable: z.enum(["transitioning", "unavailable", "standby"]).optional(),
    })
    .strict(),
  /** "apply": an operation for the sequencer (body: UnitOp); "state": the sequencer's new state and unit attentions */
  unitState: z.object({ op: z.enum(["apply", "state"]), body: z.unknown() }).strict(),
  discardRequest: z.object({ discard: node }).strict(),
  /** the sequencer's order to grow the LUN to `sizeBytes` (the sequencer's I/O is drained) */
  grow: z.object({ sizeBytes: length }).strict(),
  /** asks the sequencer to grow the pair's LUN to `sizeBytes` */
  forwardGrow: z.object({ sizeBytes: length }).strict(),
  /** the sequencer asks for the digest of a region it holds the range lock of (reply data: the digest) */
  verifyHash: z.object({ offset, length }).strict(),
  /** the sequencer's saved verify run, for the follower to save (verify-record.ts) */
  verifyRecord: VerifyRecordSchema,
  /** a mismatched region's data from the verify's source (the sequencer): write, fsync, answer */
  verifyRepair: z.object({ offset }).strict(),
  /** asks the sequencer to start a verify */
  forwardVerify: z
    .object({
      source: z.enum(["sequencer", "a", "b"]),
      rateBytesPerSecond: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    })
    .strict(),
} as const;

export type MessageType = keyof typeof MessageBodies;

const TYPE_CODES: Record<MessageType, number> = {
  hello: 1,
  helloReply: 2,
  helloFinish: 3,
  heartbeat: 4,
  syncState: 5,
  syncReady: 6,
  write: 7,
  unmap: 8,
  flush: 9,
  forwardWrite: 10,
  forwardUnmap: 11,
  forwardCompareAndWrite: 12,
  read: 13,
  resyncChunk: 14,
  resyncDone: 15,
  reply: 16,
  unitState: 17,
  discardRequest: 18,
  grow: 19,
  forwardGrow: 20,
  verifyHash: 21,
  verifyRecord: 22,
  verifyRepair: 23,
  forwardVerify: 24,
};
const TYPE_BY_CODE = new Map<number, MessageType>(
  Object.entries(TYPE_CODES).map(([k, v]) => [v, k as MessageType]),
);

/**
 * Who may receive each message type once the link is authenticated (the handlers are in
 * peer-messages.ts, one per type):
 * - connection: handled by the connection itself (authentication, heartbeats, replies);
 * - handshake: held for the handshake in progress on that connection;
 * - any: either node, linked or not;
 * - linked: either node, once the handshake established the link on that connection;
 * - sequencer / follower: only the node that sequences writes on this link / only the other;
 * - resyncTarget: only the node receiving the resync of this link.
 * A message that reaches the wrong node closes the link: the partner is confused or hostile.
 */
export type Receiver =
  "connection" | "handshake" | "any" | "linked" | "sequencer" | "follower" | "resyncTarget";

export const RECEIVERS = {
  hello: "connection",
  helloReply: "connection",
  helloFinish: "connection",
  heartbeat: "connection",
  reply: "connection",
  syncState: "handshake",
  syncReady: "handshake",
  discardRequest: "any",
  unitState: "any",
  flush: "linked",
  read: "linked",
  write: "follower",
  unmap: "follower",
  forwardWrite: "sequencer",
  forwardUnmap: "sequencer",
  forwardCompareAndWrite: "sequencer",
  grow: "follower",
  forwardGrow: "sequencer",
  verifyHash: "follower",
  verifyRecord: "follower",
  verifyRepair: "follower",
  forwardVerify: "sequencer",
  resyncChunk: "resyncTarget",
  resyncDone: "resyncTarget",
} as const satisfies Readonly<Record<MessageType, Receiver>>;

/** The message types a pair node handles (all but the connection's own). */
export type PeerMessageType = {
  [T in MessageType]: (typeof RECEIVERS)[T] extends "connection" ? never : T;
}[MessageType];

/** Which types carry binary data (all others must have dataLength 0). */
const WITH_DATA: ReadonlySet<MessageType> = new Set<MessageType>([
  "syncState",
  "write",
  "forwardWrite",
  "forwardCompareAndWrite",
  "resyncChunk",
  "verifyRepair",
  "reply",
]);

export type Body<T extends MessageType> = z.infer<(typeof MessageBodies)[T]>;

export type Message = {
  [T in MessageType]: { type: T; id: number; body: Body<T>; data: Buffer };
}[MessageType];

export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Encodes a frame as [header+body, data] so the payload is never copied. */
export function encodeFrame<T extends MessageType>(
  type: T,
  id: number,
  body: Body<T>,
  data: Buffer = EMPTY,
): Buffer[] {
  if (data.length > MAX_DATA_BYTES) throw new ProtocolError(`${type}: data too large (${data.length})`);
  if (data.length > 0 && !WITH_DATA.has(type)) throw new ProtocolError(`${type} carries no data`);
  const binaryLength = binaryBodyLength(type, body);
  let head: Buffer;
  if (binaryLength >= 0) {
    head = frameHead(type, BINARY_BODY, id, binaryLength, data.length);
    writeBinaryBody(type, body, head, HEADER_BYTES);
  } else {
    const json = JSON.stringify(body);
    const jsonLength = Buffer.byteLength(json, "utf8");
    if (jsonLength > MAX_JSON_BYTES) throw new ProtocolError(`${type}: JSON part too large (${jsonLength})`);
    head = frameHead(type, 0, id, jsonLength, data.length);
    head.write(json, HEADER_BYTES, "utf8");
  }
  return data.length > 0 ? [head, data] : [head];
}

/** One frame acknowledging the requests `ids` (each as a reply `{ ok: true }`). */
export function encodeAckBatch(ids: readonly number[]): Buffer {
  if (ids.length < 1 || ids.length > MAX_BATCHED_ACKS)
    throw new ProtocolError(`cannot batch ${ids.length} acknowledgements`);
  const head = frameHead("reply", BINARY_BODY | ACK_BATCH, 0, ids.length * 4, 0);
  for (let i = 0; i < ids.length; i++) head.writeUInt32BE(ids[i]!, HEADER_BYTES + i * 4);
  return head;
}

/** A frame's header followed by room for its body. */
function frameHead(
  type: MessageType,
  flags: number,
  id: number,
  bodyLength: number,
  dataLength: number,
): Buffer {
  const head = Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt8(TYPE_CODES[type], 4);
  head.writeUInt8(flags, 5);
  head.writeUInt16BE(0, 6);
  head.writeUInt32BE(id >>> 0, 8);
  head.writeUInt32BE(bodyLength, 12);
  head.writeUInt32BE(dataLength, 16);
  return head;
}

const EMPTY = Buffer.alloc(0);

/** The bytes of an encoded frame (encodeFrame's parts). */
export function frameBytes(frame: readonly Buffer[]): number {
  let n = 0;
  for (const part of frame) n += part.length;
  return n;
}

/** Payloads from this size on are copied straight into a pooled buffer as they arrive. */
const LARGE_DATA = 64 * 1024;

interface LargeFrame {
  type: MessageType;
  flags: number;
  id: number;
  json: Buffer;
  data: Buffer;
  filled: number;
}

/**
 * Incremental decoder: feed it socket chunks, get whole validated messages.
 * Throws ProtocolError on the first malformed frame; the connection must then be closed.
 *
 * A large payload (a 1 MiB write, a resync region) is copied into a buffer from `pool` as its
 * chunks arrive, instead of being gathered and concatenated: at high throughput fresh
 * megabytes per frame made the garbage collector a third of the receiving node's work. The
 * consumer hands such a buffer back with `release` once nothing refers to it any more.
 */
export interface FrameDecoderOptions {
  /** where large payloads come from (and go back to with `release`) */
  pool?: BufferPool;
  /**
   * The caller reuses each chunk's memory once push() returns (a socket reading into one
   * buffer): the decoder then copies out every byte it keeps, small payloads into a slab.
   */
  chunksReused?: boolean;
  /**
   * The most one frame's JSON and data may announce together (default: the protocol's bounds), and
   * what to call that bound in the refusal ("before authentication").
   */
  limit?: { bytes: number; what: string };
}

/** Payloads copied out of reused chunks up to this size are slab views. */
const SLAB_MAX_COPY = 128 * 1024;

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private large: LargeFrame | null = null;
  private readonly pool: BufferPool;
  private readonly chunksReused: boolean;
  private readonly slab = new Slab();
  private limit: { bytes: number; what: string } | null;

  constructor(o: FrameDecoderOptions = {}) {
    this.pool = o.pool ?? new BufferPool();
    this.chunksReused = o.chunksReused ?? false;
    this.limit = o.limit ?? null;
  }

  /** Sets the bound on what one frame may announce (see FrameDecoderOptions.limit). */
  setLimit(limit: { bytes: number; what: string } | null): void {
    this.limit = limit;
  }

  /** Whether no part of a frame is buffered (the decoder stands between two frames). */
  get idle(): boolean {
    return this.buffered === 0 && this.large === null;
  }

  /**
   * Takes the bytes buffered past the last frame returned (push with `max` leaves them), which
   * the caller reads otherwise from now on. Not while a large payload is in progress.
   */
  takeRest(): Buffer {
    if (this.large) throw new ProtocolError("a frame is still being received");
    const rest = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  /**
   * Where the next socket read should land: the rest of a large payload in progress (the
   * kernel then copies straight into it), else `scratch`. Hand the result to pushRead.
   */
  readTarget(scratch: Buffer): Buffer {
    const f = this.large;
    return f ? f.data.subarray(f.filled) : scratch;
  }

  /** n bytes were read into `target` (from readTarget). */
  pushRead(target: Uint8Array, n: number): Message[] {
    const f = this.large;
    if (f && target.buffer === f.data.buffer && target.byteOffset === f.data.byteOffset + f.filled) {
      f.filled += n;
      if (f.filled < f.data.length) return [];
      this.large = null;
      return asArray(parseFrame(f.type, f.flags, f.id, f.json, f.data));
    }
    const chunk = Buffer.from(target.buffer, target.byteOffset, n);
    return this.push(chunk);
  }

  /** Gives a message's data buffer back for reuse; the caller must hold no other reference. */
  release(data: Buffer): void {
    this.pool.give(data);
  }

  /**
   * Decodes the frames `chunk` completes. With `max`, stops after that many and leaves the bytes
   * past them buffered, unread (push(EMPTY, max) goes on, takeRest() hands them over).
   */
  push(chunk: Buffer, max = Infinity): Message[] {
    const out = this.decode(chunk, max);
    // What stays buffered (part of a frame) must not point into a chunk the caller reuses.
    if (this.chunksReused && this.chunks.length > 0) this.chunks = [Buffer.concat(this.chunks)];
    return out;
  }

  private decode(chunk: Buffer, max: number): Message[] {
    const out: Message[] = [];
    if (this.large) {
      const f = this.large;
      const n = Math.min(chunk.length, f.data.length - f.filled);
      chunk.copy(f.data, f.filled, 0, n);
      f.filled += n;
      if (f.filled < f.data.length) return out;
      this.large = null;
      pushAll(out, parseFrame(f.type, f.flags, f.id, f.json, f.data));
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return out;
    }
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (out.length >= max || this.buffered < HEADER_BYTES) return out;
      const head = this.peek(HEADER_BYTES);
      const magic = head.readUInt32BE(0);
      if (magic !== MAGIC) throw new ProtocolError(`bad magic 0x${magic.toString(16).padStart(8, "0")}`);
      const code = head.readUInt8(4);
      const type = TYPE_BY_CODE.get(code);
      if (!type) throw new ProtocolError(`unknown message type ${code}`);
      const flags = head.readUInt8(5);
      if ((flags & ~FRAME_FLAGS) !== 0 || head.readUInt16BE(6) !== 0) {
        throw new ProtocolError(`${type}: reserved header bits set`);
      }
      const id = head.readUInt32BE(8);
      const jsonLength = head.readUInt32BE(12);
      const dataLength = head.readUInt32BE(16);
      if (jsonLength > MAX_JSON_BYTES)
        throw new ProtocolError(`${type}: JSON length ${jsonLength} too large`);
      if (dataLength > MAX_DATA_BYTES)
        throw new ProtocolError(`${type}: data length ${dataLength} too large`);
      if (dataLength > 0 && !WITH_DATA.has(type)) {
        throw new ProtocolError(`${type}: unexpected data (${dataLength} bytes)`);
      }
      const limit = this.limit;
      if (limit && jsonLength + dataLength > limit.bytes) {
        throw new ProtocolError(
          `${type}: announces ${jsonLength + dataLength} bytes, more than the ${limit.bytes} a frame may carry ${limit.what}`,
        );
      }
      if (dataLength >= LARGE_DATA) {
        if (this.buffered < HEADER_BYTES + jsonLength) return out;
        const json = Buffer.from(this.take(HEADER_BYTES + jsonLength).subarray(HEADER_BYTES));
        // The body is checked before any of the payload is accepted.
        parseFrame(type, flags, id, json, EMPTY);
        const data = this.pool.take(dataLength);
        const filled = this.takeInto(data, Math.min(this.buffered, dataLength));
        if (filled < dataLength) {
          this.large = { type, flags, id, json, data, filled };
          return out;
        }
        pushAll(out, parseFrame(type, flags, id, json, data));
        continue;
      }
      const total = HEADER_BYTES + jsonLength + dataLength;
      if (this.buffered < total) return out;
      const frame = this.take(total);
      const data = frame.subarray(HEADER_BYTES + jsonLength);
      pushAll(
        out,
        parseFrame(
          type,
          flags,
          id,
          frame.subarray(HEADER_BYTES, HEADER_BYTES + jsonLength),
          this.chunksReused ? this.own(data) : data,
        ),
      );
    }
  }

  /** A copy of b that outlives the caller's chunk: a view of a slab for small ones. */
  private own(b: Buffer): Buffer {
    if (b.length === 0) return EMPTY;
    if (b.length > SLAB_MAX_COPY) return Buffer.from(b);
    const view = this.slab.take(b.length);
    b.copy(view);
    return view;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let frame: Buffer;
    if (first.length >= n) {
      frame = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      frame = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return frame;
  }

  /** Moves the first n buffered bytes into target; returns n. */
  private takeInto(target: Buffer, n: number): number {
    let done = 0;
    while (done < n) {
      const first = this.chunks[0]!;
      const k = Math.min(first.length, n - done);
      first.copy(target, done, 0, k);
      done += k;
      if (k === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(k);
    }
    this.buffered -= n;
    return n;
  }
}

/** The message(s) of one frame: a frame of several acknowledgements gives one reply each. */
function parseFrame(
  type: MessageType,
  flags: number,
  id: number,
  body: Buffer,
  data: Buffer,
): Message | Message[] {
  if (flags === 0) return parseBody(type, id, body, data);
  if (!(flags & BINARY_BODY)) throw new ProtocolError(`${type}: reserved header bits set`);
  const r = readBinaryBody(type, flags, id, body);
  if ("refused" in r) throw new ProtocolError(`${type}: invalid binary body: ${r.refused}`);
  if ("acks" in r) {
    if (data.length > 0) throw new ProtocolError(`${type}: a batch of acknowledgements carries data`);
    return r.acks.map((ack) => ({ type: "reply", id: ack, body: { ok: true }, data: EMPTY }) as Message);
  }
  return { type, id, body: r.body, data: data.length > 0 ? data : EMPTY } as Message;
}

function pushAll(out: Message[], m: Message | Message[]): void {
  if (Array.isArray(m)) for (const x of m) out.push(x);
  else out.push(m);
}

function asArray(m: Message | Message[]): Message[] {
  return Array.isArray(m) ? m : [m];
}

function parseBody(type: MessageType, id: number, json: Buffer, data: Buffer): Message {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString("utf8"));
  } catch {
    throw new ProtocolError(`${type}: JSON part is not valid JSON`);
  }
  const parsed = MessageBodies[type].safeParse(raw);
  if (!parsed.success) {
    throw new ProtocolError(
      `${type}: invalid body: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
    );
  }
  // Socket chunks are fresh buffers per read, so the data can stay a view without a copy.
  return { type, id, body: parsed.data, data: data.length > 0 ? data : EMPTY } as Message;
}
