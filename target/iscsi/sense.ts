/** Fixed-format sense data (SPC-4 §4.5.3) for conditions the transport itself detects. */

export const SenseKey = {
  noSense: 0x0,
  notReady: 0x2,
  mediumError: 0x3,
  hardwareError: 0x4,
  illegalRequest: 0x5,
  unitAttention: 0x6,
  abortedCommand: 0xb,
} as const;

export function fixedSense(key: number, asc: number, ascq: number): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key & 0x0f;
  s[7] = 10; // additional sense length
  s[12] = asc;
  s[13] = ascq;
  return s;
}
