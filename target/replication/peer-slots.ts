/**
 * The peer listener's room for connections that have not authenticated yet. Anyone who reaches
 * the peer port can open one; none of them may keep the partner out:
 *
 * - each one has PEER_AUTH_TIMEOUT_MS to finish the handshake (peer-connection.ts), counted from
 *   the accept whatever it sends;
 * - at most `max` are held at once, and a new connection is always admitted: when all slots are
 *   taken, it takes the slot of one already there, chosen in the source (IPv4 address or IPv6 /64)
 *   that holds the most slots — there, the oldest one that has not sent a hello yet, else its
 *   oldest.
 *
 * So a flood from one source only ever pushes out its own connections while the partner's source
 * holds fewer; the partner's connection, which sends its hello at once, gives way only to at least
 * `max` newer connections arriving during its handshake (a round trip) from sources holding as
 * many slots as the partner's, and then the partner dials again half a second later.
 */
import { sourceOf } from "../iscsi/connection-limits.js";

/** Unauthenticated connections held at once. */
export const MAX_PENDING_PEER_CONNECTIONS = 16;

export interface PendingSlot {
  readonly source: string;
  /** The connection sent a well-formed hello: it is preferred over silent ones when one must give way. */
  helloSeen(): void;
  /** The connection authenticated or closed: its slot is free. */
  release(): void;
}

interface Entry extends PendingSlot {
  seq: number;
  hello: boolean;
  drop: () => void;
}

export class PendingSlots {
  private readonly entries = new Set<Entry>();
  private seq = 0;
  /** connections dropped to make room so far */
  dropped = 0;

  constructor(readonly max = MAX_PENDING_PEER_CONNECTIONS) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Admits a new connection from `address`; when all slots are taken, first drops another one
   * (its `drop` is called, and its slot freed). `drop` closes this connection when it must give way.
   */
  admit(address: string | undefined, drop: () => void): PendingSlot {
    while (this.entries.size >= this.max) {
      const victim = this.victim();
      if (!victim) break;
      this.entries.delete(victim);
      this.dropped++;
      victim.drop();
    }
    const entries = this.entries;
    const entry: Entry = {
      source: sourceOf(address),
      seq: this.seq++,
      hello: false,
      drop,
      helloSeen() {
        entry.hello = true;
      },
      release() {
        entries.delete(entry);
      },
    };
    entries.add(entry);
    return entry;
  }

  /** The connection that gives way (see the file comment). */
  private victim(): Entry | undefined {
    const bySource = new Map<string, { count: number; candidate: Entry }>();
    for (const e of this.entries) {
      const s = bySource.get(e.source);
      if (!s) bySource.set(e.source, { count: 1, candidate: e });
      else {
        s.count++;
        // entries are in arrival order: the first silent one is the oldest silent one
        if (s.candidate.hello && !e.hello) s.candidate = e;
      }
    }
    let best: { count: number; candidate: Entry } | undefined;
    for (const s of bySource.values()) {
      if (
        !best ||
        s.count > best.count ||
        (s.count === best.count && rank(s.candidate) < rank(best.candidate))
      )
        best = s;
    }
    return best?.candidate;
  }
}

/** Among sources holding as many slots: a silent connection before one that sent hello, older first. */
function rank(e: Entry): number {
  return (e.hello ? 2 ** 40 : 0) + e.seq;
}
