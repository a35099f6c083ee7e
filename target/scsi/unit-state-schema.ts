/**
 * The logical unit state that both nodes of a pair must agree on: persistent
 * reservations (SPC-4 5.12), SPC-2 RESERVE/RELEASE and the caching mode page's
 * WCE. Everything here is JSON-serialisable so it can be persisted and shipped to
 * the partner node.
 */
import { z } from "zod";

const hexKey = z.string().regex(/^[0-9a-f]{16}$/, "reservation key as 16 lower-case hex digits");

/** The identity of an I_T nexus as reservations see it. */
export const NexusIdentitySchema = z.object({
  id: z.string().min(1),
  initiatorName: z.string().min(1),
  /** 12 hex digits; "" for a registration that applies to every ISID of the initiator (TransportID format 00b). */
  isid: z.string().regex(/^([0-9a-f]{12})?$/),
  relativeTargetPort: z.number().int().min(0).max(0xffff),
});
export type NexusIdentity = z.infer<typeof NexusIdentitySchema>;

export const RegistrationSchema = z.object({
  /** The I_T nexus that registered (or was registered by SPEC_I_PT / REGISTER AND MOVE). */
  nexusId: z.string().min(1),
  initiatorName: z.string().min(1),
  isid: z.string().regex(/^([0-9a-f]{12})?$/),
  relativeTargetPort: z.number().int().min(0).max(0xffff),
  key: hexKey,
  /** Registered through every target port of the pair (ALL_TG_PT). */
  allTargetPorts: z.boolean(),
});
export type Registration = z.infer<typeof RegistrationSchema>;

export const ReservationTypeSchema = z.enum([
  "write-exclusive",
  "exclusive-access",
  "write-exclusive-registrants-only",
  "exclusive-access-registrants-only",
  "write-exclusive-all-registrants",
  "exclusive-access-all-registrants",
]);
export type ReservationType = z.infer<typeof ReservationTypeSchema>;

/** TYPE field codes (SPC-4 table 46). */
export const reservationTypeCodes: Record<ReservationType, number> = {
  "write-exclusive": 1,
  "exclusive-access": 3,
  "write-exclusive-registrants-only": 5,
  "exclusive-access-registrants-only": 6,
  "write-exclusive-all-registrants": 7,
  "exclusive-access-all-registrants": 8,
};

export function reservationTypeFromCode(code: number): ReservationType | undefined {
  for (const [t, c] of Object.entries(reservationTypeCodes)) if (c === code) return t as ReservationType;
  return undefined;
}

export const isAllRegistrantsType = (t: ReservationType): boolean =>
  t === "write-exclusive-all-registrants" || t === "exclusive-access-all-registrants";
export const isRegistrantsType = (t: ReservationType): boolean =>
  t === "write-exclusive-registrants-only" ||
  t === "exclusive-access-registrants-only" ||
  isAllRegistrantsType(t);

export const ReservationSchema = z.object({
  /** nexusId of the holder's registration; null for the all-registrants types (every registrant holds it). */
  holderNexusId: z.string().nullable(),
  type: ReservationTypeSchema,
  scope: z.literal("logical-unit"),
});
export type Reservation = z.infer<typeof ReservationSchema>;

export const UnitStateSchema = z.object({
  registrations: z.array(RegistrationSchema),
  reservation: ReservationSchema.nullable(),
  /** PRgeneration: incremented by every PR OUT that changes registrations. */
  prGeneration: z.number().int().min(0).max(0xffffffff),
  /** Activate persist through power loss, as last requested by a REGISTER. */
  aptpl: z.boolean(),
  /** The I_T nexus holding an SPC-2 RESERVE(6/10) reservation. */
  spc2Holder: z.string().nullable(),
  /**
   * Caching mode page WCE (SBC-4 6.5.5): when false every write is written through (FUA) on
   * both nodes. State persisted before the field existed loads with the default, enabled.
   */
  writeCacheEnabled: z.boolean().default(true),
});
export type UnitState = z.infer<typeof UnitStateSchema>;

export const emptyUnitState = (): UnitState => ({
  registrations: [],
  reservation: null,
  prGeneration: 0,
  aptpl: false,
  spc2Holder: null,
  writeCacheEnabled: true,
});

/**
 * The state persisted in `path` (its text), as loaded at start: a file that is not JSON or
 * not a valid state is refused, naming the file and the offending fields. SPC-2 reservations
 * do not survive a restart (it is a power-on reset); everything else does.
 */
export function parsePersistedUnitState(path: string, text: string): UnitState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`unit state file ${path} is invalid: not JSON (${(e as Error).message})`);
  }
  const parsed = UnitStateSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(top level)"}: ${i.message}`);
    throw new Error(`unit state file ${path} is invalid: ${issues.join("; ")}`);
  }
  return { ...parsed.data, spc2Holder: null };
}

export const TransportIdSchema = z.object({
  initiatorName: z.string().min(1),
  /** null when the TransportID names the initiator without an ISID (format 00b). */
  isid: z
    .string()
    .regex(/^[0-9a-f]{12}$/)
    .nullable(),
});
export type TransportId = z.infer<typeof TransportIdSchema>;

export const PrOutServiceActionSchema = z.enum([
  "register",
  "reserve",
  "release",
  "clear",
  "preempt",
  "preempt-and-abort",
  "register-and-ignore-existing-key",
  "register-and-move",
]);
export type PrOutServiceAction = z.infer<typeof PrOutServiceActionSchema>;

export const PrOutOpSchema = z.object({
  kind: z.literal("pr-out"),
  nexus: NexusIdentitySchema,
  serviceAction: PrOutServiceActionSchema,
  /** TYPE field; only meaningful for reserve, release, preempt, register-and-move. */
  type: ReservationTypeSchema.nullable(),
  key: hexKey,
  serviceActionKey: hexKey,
  aptpl: z.boolean(),
  allTargetPorts: z.boolean(),
  specIpt: z.boolean(),
  /** SPEC_I_PT TransportIDs, or the single destination of REGISTER AND MOVE. */
  transportIds: z.array(TransportIdSchema),
  /** REGISTER AND MOVE: unregister the source. */
  unregister: z.boolean(),
  /** REGISTER AND MOVE: relative target port of the destination. */
  moveRelativeTargetPort: z.number().int().min(0).max(0xffff),
});
export type PrOutOp = z.infer<typeof PrOutOpSchema>;

export const UnitOpSchema = z.discriminatedUnion("kind", [
  PrOutOpSchema,
  z.object({ kind: z.literal("spc2-reserve"), nexusId: z.string().min(1) }),
  z.object({ kind: z.literal("spc2-release"), nexusId: z.string().min(1) }),
  z.object({ kind: z.literal("nexus-lost"), nexusId: z.string().min(1) }),
  z.object({ kind: z.literal("lun-reset"), nexusId: z.string().min(1) }),
  /** MODE SELECT of the caching page's WCE through `nexusId`; the other nexuses hear MODE PARAMETERS CHANGED. */
  z.object({ kind: z.literal("set-write-cache"), nexusId: z.string().min(1), enabled: z.boolean() }),
  /** Any target-wide event every nexus must hear about (ALUA change, LUN inventory change). */
  z.object({
    kind: z.literal("broadcast-unit-attention"),
    asc: z.number().int().min(0).max(255),
    ascq: z.number().int().min(0).max(255),
    exceptNexusId: z.string().nullable(),
  }),
]);
export type UnitOp = z.infer<typeof UnitOpSchema>;

/**
 * A unit attention to queue. It applies to the nexus `nexusId`, or, when `allNexuses`, to every
 * nexus except `exceptNexusId`; `initiatorName`/`isid`/`anyPort` widen it to every nexus of a
 * registration that spans ISIDs or target ports.
 */
export const UnitAttentionSchema = z.object({
  nexusId: z.string(),
  asc: z.number().int().min(0).max(255),
  ascq: z.number().int().min(0).max(255),
  allNexuses: z.boolean().optional(),
  exceptNexusId: z.string().nullable().optional(),
  match: z
    .object({
      initiatorName: z.string(),
      isid: z.string(),
      relativeTargetPort: z.number().int(),
      anyPort: z.boolean(),
    })
    .optional(),
});
export type UnitAttention = z.infer<typeof UnitAttentionSchema>;

export const UnitOpOutcomeSchema = z.object({
  /** SCSI status: GOOD, CHECK CONDITION or RESERVATION CONFLICT. */
  status: z.number().int(),
  senseKey: z.number().int().optional(),
  asc: z.number().int().optional(),
  ascq: z.number().int().optional(),
  /** Byte of the parameter list the error points at. */
  fieldPointer: z.number().int().optional(),
});
export type UnitOpOutcome = z.infer<typeof UnitOpOutcomeSchema>;

export const UnitOpResultSchema = z.object({
  outcome: UnitOpOutcomeSchema,
  unitAttentions: z.array(UnitAttentionSchema),
  /** PREEMPT AND ABORT: nexuses whose tasks must be aborted. */
  abortNexusIds: z.array(z.string()).optional(),
});
export type UnitOpResult = z.infer<typeof UnitOpResultSchema>;

/** The canonical id of an I_T nexus: "<initiator>,i,0x<isid>|<relative target port>". */
export function itNexusId(initiatorName: string, isid: string, relativeTargetPort: number): string {
  return `${initiatorName},i,0x${isid}|${relativeTargetPort}`;
}

/** Whether `reg` covers the I_T nexus `n`. */
export function registrationCovers(reg: Registration, n: Omit<NexusIdentity, "id">): boolean {
  return (
    reg.initiatorName.toLowerCase() === n.initiatorName.toLowerCase() &&
    (reg.isid === "" || reg.isid === n.isid.toLowerCase()) &&
    (reg.allTargetPorts || reg.relativeTargetPort === n.relativeTargetPort)
  );
}

/** Whether unit attention `ua` is addressed to the I_T nexus `n` (matched by id or by registration). */
export function unitAttentionAppliesTo(ua: UnitAttention, n: NexusIdentity): boolean {
  if (ua.allNexuses) return ua.exceptNexusId !== n.id;
  if (ua.nexusId === n.id) return true;
  const m = ua.match;
  if (!m) return false;
  return (
    m.initiatorName.toLowerCase() === n.initiatorName.toLowerCase() &&
    (m.isid === "" || m.isid === n.isid.toLowerCase()) &&
    (m.anyPort || m.relativeTargetPort === n.relativeTargetPort)
  );
}

/** The interface both the standalone and the pair implementation of shared unit state provide. */
export interface UnitStateStore {
  /** The current state, synchronously (conflict checks on the I/O path read it). */
  get(): UnitState;
  /** Applies one operation in the unit's single order; resolves once the new state is durable where it must be. */
  apply(op: UnitOp): Promise<UnitOpResult>;
  /** Called for every unit attention any applied operation raises, on every node. */
  onUnitAttention(fn: (ua: UnitAttention) => void): void;
  onChange?(fn: (state: UnitState) => void): void;
}
