/**
 * key=value pairs of Login and Text PDUs (RFC 7143 §6): UTF-8, each pair ended by a NUL.
 * Text may span several PDUs (C bit); TextAccumulator joins the pieces.
 */

export type KeyValues = [key: string, value: string][];

export const MAX_KEY_LENGTH = 63;
export const MAX_VALUE_LENGTH = 8192;
/** Bound on a whole negotiation text, so a peer cannot make us buffer without end. */
export const MAX_TEXT_LENGTH = 64 * 1024;

export class TextParseError extends Error {}

/** Parses a data segment of key=value\0 pairs. A missing final NUL is tolerated; empty strings are skipped. */
export function parseKeyValues(data: Buffer): KeyValues {
  const out: KeyValues = [];
  const seen = new Set<string>();
  let p = 0;
  while (p < data.length) {
    let end = data.indexOf(0, p);
    if (end < 0) end = data.length;
    if (end > p) {
      const pair = data.toString("utf8", p, end);
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new TextParseError(`malformed key=value pair "${pair.slice(0, 64)}"`);
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (key.length > MAX_KEY_LENGTH) throw new TextParseError(`key too long: ${key.slice(0, 64)}`);
      if (!/^[A-Za-z0-9.\-+@_]+$/.test(key))
        throw new TextParseError(`invalid key name "${key.slice(0, 64)}"`);
      if (value.length > MAX_VALUE_LENGTH) throw new TextParseError(`value of ${key} too long`);
      if (seen.has(key)) throw new TextParseError(`key ${key} sent twice`);
      seen.add(key);
      out.push([key, value]);
    }
    p = end + 1;
  }
  return out;
}

export function encodeKeyValues(kv: KeyValues): Buffer {
  if (kv.length === 0) return Buffer.alloc(0);
  return Buffer.from(kv.map(([k, v]) => `${k}=${v}\0`).join(""), "utf8");
}

/** Joins text split across PDUs with the C bit; bounded by MAX_TEXT_LENGTH. */
export class TextAccumulator {
  private parts: Buffer[] = [];
  private length = 0;

  /** Adds one PDU's data; returns the complete text when `more` is false. */
  add(data: Buffer, more: boolean): Buffer | undefined {
    this.length += data.length;
    if (this.length > MAX_TEXT_LENGTH) {
      this.reset();
      throw new TextParseError("negotiation text exceeds 64 KiB");
    }
    this.parts.push(Buffer.from(data));
    if (more) return undefined;
    const all = Buffer.concat(this.parts);
    this.reset();
    return all;
  }

  get pending(): boolean {
    return this.parts.length > 0;
  }

  reset(): void {
    this.parts = [];
    this.length = 0;
  }
}

/**
 * Splits response text into pieces no larger than the peer's MaxRecvDataSegmentLength; all but
 * the last go out with the C bit.
 */
export function splitText(text: Buffer, maxSegment: number): Buffer[] {
  if (text.length <= maxSegment) return [text];
  const out: Buffer[] = [];
  for (let p = 0; p < text.length; p += maxSegment)
    out.push(text.subarray(p, Math.min(text.length, p + maxSegment)));
  return out;
}
