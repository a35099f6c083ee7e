// Pure DNS wire format: parse a query, build an answer with A records (RFC 1035).

export interface DnsQuestion {
  id: number;
  flags: number;
  name: string; // lower case, no trailing dot
  type: number;
  klass: number;
  /** Bytes of the question section, echoed in the answer. */
  question: Buffer;
}

export const TYPE_A = 1;
export const RCODE_OK = 0;
export const RCODE_FORMERR = 1;
export const RCODE_NXDOMAIN = 3;

export function parseQuery(msg: Buffer): DnsQuestion | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined || len > 63) return undefined;
    off++;
    if (len === 0) break;
    if (off + len > msg.length) return undefined;
    labels.push(
      msg
        .subarray(off, off + len)
        .toString("ascii")
        .toLowerCase(),
    );
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join("."),
    type: msg.readUInt16BE(off),
    klass: msg.readUInt16BE(off + 2),
    question: msg.subarray(12, off + 4),
  };
}

/** An authoritative answer with the given A records (or none), echoing the question. */
export function buildAnswer(q: DnsQuestion, rcode: number, ips: string[], ttl = 5): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR=1, opcode from the query, AA=1, RD copied, RA=0.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ips.length, 6);
  const answers = ips.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    ip.split(".").forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
    return rr;
  });
  return Buffer.concat([header, q.question, ...answers]);
}

/** A FORMERR reply for a query that could not be parsed (only its id is known). */
export function formatError(msg: Buffer): Buffer {
  const header = Buffer.alloc(12);
  if (msg.length >= 2) header.writeUInt16BE(msg.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | RCODE_FORMERR, 2);
  return header;
}
