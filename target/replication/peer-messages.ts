/**
 * The pair node's handling of peer messages: one handler per type, beside the table in
 * protocol.ts (`RECEIVERS`) that says which node may receive it. `dispatchPeerMessage` checks
 * the receiver rule against the link as it is now, then calls the handler; a message that
 * reaches the wrong node closes the link.
 */
import { DeviceUnavailableError } from "../store/block-device.js";
import type { HandshakeMailbox } from "./handshake-mailbox.js";
import type { LunGrowth } from "./lun-growth.js";
import type { PairCore } from "./pair-core.js";
import type { Link } from "./pair-state.js";
import type { PeerConnection } from "./peer-connection.js";
import { RECEIVERS, type Message, type MessageOf, type PeerMessageType } from "./protocol.js";
import type { ResyncSession } from "./resync-session.js";
import type { Sequencer } from "./sequencer.js";
import type { UnitStateRouting } from "./unit-state-routing.js";
import { hashRegion } from "./region-hash.js";
import type { OnlineVerify } from "./verify.js";
import type { NodeName } from "./witness.js";

export interface PeerMessageContext {
  core: PairCore;
  seq: Sequencer;
  units: UnitStateRouting;
  resync: ResyncSession;
  growth: LunGrowth;
  verify: OnlineVerify;
  resolveSplitBrain(discard: NodeName): Promise<string>;
}

/** What a handler gets: the message, its connection, the current link (null for handshake and `any` messages). */
interface Delivery<T extends PeerMessageType> {
  x: PeerMessageContext;
  c: PeerConnection;
  m: MessageOf<T>;
  link: Link | null;
  mailbox: HandshakeMailbox;
  ok(): void;
  fail(e: unknown): void;
}

type Handlers = { [T in PeerMessageType]: (d: Delivery<T>) => void };

const HANDLERS: Handlers = {
  syncState: (d) => d.mailbox.put(d.m),
  syncReady: (d) => d.mailbox.put(d.m),
  discardRequest: (d) => {
    d.x
      .resolveSplitBrain(d.m.body.discard)
      .catch((e: Error) => d.x.core.log.warn({ err: e.message }, "cannot discard on the partner's request"));
  },
  unitState: (d) => d.x.units.onMessage(d.c, d.m),
  flush: (d) => {
    d.x.core.local.flush().then(d.ok, d.fail);
  },
  read: (d) => {
    const { m, c } = d;
    if (!d.x.core.inRange(m.body.offset, m.body.length)) {
      c.close("read outside the device");
      return;
    }
    d.x.core.local
      .read(m.body.offset, m.body.length)
      .then((data) => c.reply(m.id, { ok: true }, data), d.fail);
  },
  write: (d) => {
    const { m, c } = d;
    if (!d.x.core.inRange(m.body.offset, m.data.length)) {
      c.close("write outside the device");
      return;
    }
    d.x.core.local
      .write(m.body.offset, m.data, { fua: m.body.fua })
      .then(d.ok, d.fail)
      .finally(() => c.releaseData(m.data));
  },
  unmap: (d) => {
    const { m, c } = d;
    if (!d.x.core.inRange(m.body.offset, m.body.length)) {
      c.close("unmap outside the device");
      return;
    }
    d.x.core.local.unmap(m.body.offset, m.body.length).then(d.ok, d.fail);
  },
  // The sequencer drained its mutations before sending it: nothing writes here meanwhile.
  grow: (d) => {
    d.x.growth.growLocal(d.m.body.sizeBytes).then(d.ok, d.fail);
  },
  forwardGrow: (d) => {
    d.x.growth.growAsSequencer(d.m.body.sizeBytes).then(d.ok, d.fail);
  },
  forwardWrite: (d) => forwarded(d),
  forwardUnmap: (d) => forwarded(d),
  forwardCompareAndWrite: (d) => forwarded(d),
  resyncChunk: (d) => {
    d.x.resync
      .receiveChunk(d.m)
      .then(d.ok, d.fail)
      .finally(() => d.c.releaseData(d.m.data));
  },
  // The sequencer holds the region's range lock: no write to it is in flight on either node.
  verifyHash: (d) => {
    const { m, c } = d;
    if (!d.x.core.inRange(m.body.offset, m.body.length)) {
      c.close("verify outside the device");
      return;
    }
    d.x.core.local
      .read(m.body.offset, m.body.length)
      .then(hashRegion)
      .then((digest) => c.reply(m.id, { ok: true }, digest), d.fail);
  },
  verifyRecord: (d) => {
    d.x.verify
      .received(d.m.body)
      .catch((e: Error) => d.x.core.log.warn({ err: e.message }, "cannot save the partner's verify record"));
  },
  verifyRepair: (d) => {
    d.x.resync
      .receiveChunk(d.m)
      .then(d.ok, d.fail)
      .finally(() => d.c.releaseData(d.m.data));
  },
  forwardVerify: (d) => {
    d.x.verify.start(d.m.body).then(d.ok, d.fail);
  },
  resyncDone: (d) => {
    d.x.resync.finishAsTarget(d.link!, d.m.body.current).then(d.ok, d.fail);
  },
};

/** Once answered, the partner holds the data too: the sequencer's copy of it was sent. */
function forwarded(
  d: Pick<Delivery<PeerMessageType>, "x" | "c" | "fail"> & {
    m: MessageOf<"forwardWrite"> | MessageOf<"forwardUnmap"> | MessageOf<"forwardCompareAndWrite">;
  },
): void {
  const { m, c } = d;
  d.x.seq
    .serveForwarded(m)
    .then((result) => c.reply(m.id, { ok: true, result }), d.fail)
    .finally(() => c.releaseData(m.data));
}

/** Why `m` must not be handled by this node now, or null when it may. */
function misdirected(
  type: PeerMessageType,
  link: Link | null,
  c: PeerConnection,
  node: NodeName,
): string | null {
  const rule = RECEIVERS[type];
  if (rule === "handshake" || rule === "any") return null;
  if (!link || link.conn !== c) return `${type} before the handshake finished`;
  switch (rule) {
    case "linked":
      return null;
    case "sequencer":
      return link.sequencer === node ? null : `${type} sent to the node that is not the sequencer`;
    case "follower":
      return link.sequencer === node ? `${type} sent to the sequencer` : null;
    case "resyncTarget":
      return link.role === "target" ? null : `${type} sent to a node that is not a resync target`;
  }
}

export function dispatchPeerMessage(
  x: PeerMessageContext,
  c: PeerConnection,
  m: Message,
  mailbox: HandshakeMailbox,
): void {
  const type = m.type as PeerMessageType;
  if (!(type in HANDLERS)) {
    c.close(`unexpected ${m.type}`);
    return;
  }
  const link = x.core.link;
  const wrong = misdirected(type, link, c, x.core.node);
  if (wrong) {
    c.close(wrong);
    return;
  }
  const d: Delivery<PeerMessageType> = {
    x,
    c,
    m: m as MessageOf<PeerMessageType>,
    link,
    mailbox,
    ok: () => c.reply(m.id, { ok: true }),
    fail: (e: unknown) => {
      const unavailable = e instanceof DeviceUnavailableError ? e.kind : undefined;
      c.reply(m.id, { ok: false, error: (e as Error).message, ...(unavailable ? { unavailable } : {}) });
    },
  };
  (HANDLERS[type] as (d: Delivery<PeerMessageType>) => void)(d);
}
