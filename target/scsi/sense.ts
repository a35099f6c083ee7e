/**
 * Fixed-format sense data (SPC-4 4.5.3) and the error type command handlers
 * throw to end a command with CHECK CONDITION.
 */

export const SenseKey = {
  noSense: 0x0,
  recoveredError: 0x1,
  notReady: 0x2,
  mediumError: 0x3,
  hardwareError: 0x4,
  illegalRequest: 0x5,
  unitAttention: 0x6,
  dataProtect: 0x7,
  abortedCommand: 0xb,
  miscompare: 0xe,
} as const;

/** Points at the byte (and optionally bit) of the CDB or parameter list that is wrong. */
export interface FieldPointer {
  readonly inCdb: boolean;
  readonly byte: number;
  readonly bit?: number;
}

export interface SenseDetails {
  /** INFORMATION field; sets VALID. */
  readonly information?: number;
  readonly field?: FieldPointer;
}

export const FIXED_SENSE_LENGTH = 18;

export function buildSense(key: number, asc: number, ascq: number, details?: SenseDetails): Buffer {
  const b = Buffer.alloc(FIXED_SENSE_LENGTH);
  b[0] = 0x70;
  b[2] = key & 0x0f;
  if (details?.information !== undefined) {
    b[0] = 0xf0;
    b.writeUInt32BE(details.information >>> 0, 3);
  }
  b[7] = FIXED_SENSE_LENGTH - 8;
  b[12] = asc;
  b[13] = ascq;
  const f = details?.field;
  if (f) {
    b[15] = 0x80 | (f.inCdb ? 0x40 : 0) | (f.bit !== undefined ? 0x08 | (f.bit & 7) : 0);
    b.writeUInt16BE(f.byte & 0xffff, 16);
  }
  return b;
}

/** Decoded key/ASC/ASCQ of fixed-format sense, for tests and logs. */
export function parseSense(sense: Buffer): { key: number; asc: number; ascq: number; information?: number } {
  const key = (sense[2] ?? 0) & 0x0f;
  const asc = sense[12] ?? 0;
  const ascq = sense[13] ?? 0;
  const valid = ((sense[0] ?? 0) & 0x80) !== 0;
  return valid ? { key, asc, ascq, information: sense.readUInt32BE(3) } : { key, asc, ascq };
}

/** Ends a command with CHECK CONDITION and the given sense. */
export class ScsiError extends Error {
  constructor(
    readonly key: number,
    readonly asc: number,
    readonly ascq: number,
    readonly details?: SenseDetails,
  ) {
    super(
      `sense ${key.toString(16)}/${asc.toString(16).padStart(2, "0")}/${ascq.toString(16).padStart(2, "0")}`,
    );
    this.name = "ScsiError";
  }

  sense(): Buffer {
    return buildSense(this.key, this.asc, this.ascq, this.details);
  }
}

/** Ends a command with RESERVATION CONFLICT status (no sense). */
export class ReservationConflict extends Error {
  constructor() {
    super("reservation conflict");
    this.name = "ReservationConflict";
  }
}

export const invalidOpcode = (): ScsiError =>
  new ScsiError(SenseKey.illegalRequest, 0x20, 0x00, { field: { inCdb: true, byte: 0 } });
export const invalidFieldInCdb = (byte: number, bit?: number): ScsiError =>
  new ScsiError(SenseKey.illegalRequest, 0x24, 0x00, {
    field: bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit },
  });
export const invalidFieldInParameterList = (byte: number, bit?: number): ScsiError =>
  new ScsiError(SenseKey.illegalRequest, 0x26, 0x00, {
    field: bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit },
  });
export const lbaOutOfRange = (): ScsiError => new ScsiError(SenseKey.illegalRequest, 0x21, 0x00);
export const parameterListLengthError = (): ScsiError => new ScsiError(SenseKey.illegalRequest, 0x1a, 0x00);
export const logicalUnitNotSupported = (): ScsiError => new ScsiError(SenseKey.illegalRequest, 0x25, 0x00);
export const miscompare = (offset: number): ScsiError =>
  new ScsiError(SenseKey.miscompare, 0x1d, 0x00, { information: offset });
export const mediumRemovalPrevented = (): ScsiError => new ScsiError(SenseKey.illegalRequest, 0x53, 0x02);
export const savingParametersNotSupported = (): ScsiError =>
  new ScsiError(SenseKey.illegalRequest, 0x39, 0x00, { field: { inCdb: true, byte: 1, bit: 0 } });
