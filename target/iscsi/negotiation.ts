/**
 * Operational key negotiation (RFC 7143 §13): for every key the initiator offers, the value the
 * target answers and the value both sides then use. Pure: no I/O, no session state.
 */
import type { KeyValues } from "./text-keys.js";

export type DigestName = "CRC32C" | "None";

/** The values in force on a session/connection after negotiation. */
export interface OperationalParams {
  headerDigest: DigestName;
  dataDigest: DigestName;
  /** The initiator's receive limit: the largest data segment the target may send. */
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  initialR2T: boolean;
  immediateData: boolean;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  maxConnections: number;
  ifMarker: boolean;
  ofMarker: boolean;
  taskReporting: string;
  protocolLevel: number;
}

/** What this target is willing to use; the negotiation result functions combine it with the offer. */
export interface TargetPolicy {
  /** The largest data segment the target accepts (declared to the initiator). */
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  initialR2T: boolean;
  immediateData: boolean;
  headerDigests: DigestName[];
  dataDigests: DigestName[];
  errorRecoveryLevel: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  maxConnections: number;
}

/** RFC 7143 defaults: what applies to keys nobody negotiated. */
export function rfcDefaults(): OperationalParams {
  return {
    headerDigest: "None",
    dataDigest: "None",
    maxRecvDataSegmentLength: 8192,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    maxOutstandingR2T: 1,
    initialR2T: true,
    immediateData: true,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
    errorRecoveryLevel: 0,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    maxConnections: 1,
    ifMarker: false,
    ofMarker: false,
    taskReporting: "RFC3720",
    protocolLevel: 0,
  };
}

export function defaultTargetPolicy(): TargetPolicy {
  return {
    maxRecvDataSegmentLength: 262144,
    maxBurstLength: 16776192,
    firstBurstLength: 16776192,
    maxOutstandingR2T: 16,
    initialR2T: false,
    immediateData: true,
    headerDigests: ["CRC32C", "None"],
    dataDigests: ["CRC32C", "None"],
    errorRecoveryLevel: 0,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    maxConnections: 1,
  };
}

/** Keys that carry names and types rather than negotiated values; the login layer acts on them. */
export interface Declarations {
  initiatorName?: string;
  initiatorAlias?: string;
  targetName?: string;
  sessionType?: string;
}

export type Phase = "login" | "full-feature";

export interface NegotiationResult {
  params: OperationalParams;
  /** What the target answers, in offer order. */
  responses: KeyValues;
  declarations: Declarations;
  /** Keys answered Reject, for logging. */
  rejected: string[];
}

type Combine = "min" | "max" | "declarative";
interface NumericKey {
  kind: "numeric";
  field: keyof OperationalParams &
    (
      | "maxBurstLength"
      | "firstBurstLength"
      | "maxOutstandingR2T"
      | "errorRecoveryLevel"
      | "defaultTime2Wait"
      | "defaultTime2Retain"
      | "maxConnections"
      | "maxRecvDataSegmentLength"
      | "protocolLevel"
    );
  min: number;
  max: number;
  combine: Combine;
  ours: (p: TargetPolicy) => number;
  loginOnly: boolean;
}
interface BooleanKey {
  kind: "boolean";
  field: "initialR2T" | "immediateData" | "dataPDUInOrder" | "dataSequenceInOrder" | "ifMarker" | "ofMarker";
  combine: "and" | "or";
  ours: (p: TargetPolicy) => boolean;
}
interface DigestKey {
  kind: "digest";
  field: "headerDigest" | "dataDigest";
  ours: (p: TargetPolicy) => DigestName[];
}
interface ListKey {
  kind: "list";
  field: "taskReporting";
  ours: string[];
}
interface DeclarationKey {
  kind: "declaration";
  field: keyof Declarations;
  /** Allowed values, when restricted. */
  values?: string[];
  loginOnly: boolean;
}
/** Keys only the target may send; an initiator sending them commits a protocol error. */
interface TargetOnlyKey {
  kind: "target-only";
}
/** Obsolete marker intervals: meaningless once markers are off. */
interface IrrelevantKey {
  kind: "irrelevant";
}
type KeySpec = NumericKey | BooleanKey | DigestKey | ListKey | DeclarationKey | TargetOnlyKey | IrrelevantKey;

const MAX_24 = 16777215;

/** Every key of RFC 7143 §13 (plus iSCSIProtocolLevel, RFC 7144) with its result function. */
export const KEY_TABLE: Readonly<Record<string, KeySpec>> = {
  HeaderDigest: { kind: "digest", field: "headerDigest", ours: (p) => p.headerDigests },
  DataDigest: { kind: "digest", field: "dataDigest", ours: (p) => p.dataDigests },
  MaxConnections: {
    kind: "numeric",
    field: "maxConnections",
    min: 1,
    max: 65535,
    combine: "min",
    ours: (p) => p.maxConnections,
    loginOnly: true,
  },
  InitialR2T: { kind: "boolean", field: "initialR2T", combine: "or", ours: (p) => p.initialR2T },
  ImmediateData: { kind: "boolean", field: "immediateData", combine: "and", ours: (p) => p.immediateData },
  MaxRecvDataSegmentLength: {
    kind: "numeric",
    field: "maxRecvDataSegmentLength",
    min: 512,
    max: MAX_24,
    combine: "declarative",
    ours: (p) => p.maxRecvDataSegmentLength,
    loginOnly: false,
  },
  MaxBurstLength: {
    kind: "numeric",
    field: "maxBurstLength",
    min: 512,
    max: MAX_24,
    combine: "min",
    ours: (p) => p.maxBurstLength,
    loginOnly: true,
  },
  FirstBurstLength: {
    kind: "numeric",
    field: "firstBurstLength",
    min: 512,
    max: MAX_24,
    combine: "min",
    ours: (p) => p.firstBurstLength,
    loginOnly: true,
  },
  DefaultTime2Wait: {
    kind: "numeric",
    field: "defaultTime2Wait",
    min: 0,
    max: 3600,
    combine: "max",
    ours: (p) => p.defaultTime2Wait,
    loginOnly: true,
  },
  DefaultTime2Retain: {
    kind: "numeric",
    field: "defaultTime2Retain",
    min: 0,
    max: 3600,
    combine: "min",
    ours: (p) => p.defaultTime2Retain,
    loginOnly: true,
  },
  MaxOutstandingR2T: {
    kind: "numeric",
    field: "maxOutstandingR2T",
    min: 1,
    max: 65535,
    combine: "min",
    ours: (p) => p.maxOutstandingR2T,
    loginOnly: true,
  },
  DataPDUInOrder: { kind: "boolean", field: "dataPDUInOrder", combine: "or", ours: () => true },
  DataSequenceInOrder: { kind: "boolean", field: "dataSequenceInOrder", combine: "or", ours: () => true },
  ErrorRecoveryLevel: {
    kind: "numeric",
    field: "errorRecoveryLevel",
    min: 0,
    max: 2,
    combine: "min",
    ours: (p) => p.errorRecoveryLevel,
    loginOnly: true,
  },
  IFMarker: { kind: "boolean", field: "ifMarker", combine: "and", ours: () => false },
  OFMarker: { kind: "boolean", field: "ofMarker", combine: "and", ours: () => false },
  IFMarkInt: { kind: "irrelevant" },
  OFMarkInt: { kind: "irrelevant" },
  TaskReporting: { kind: "list", field: "taskReporting", ours: ["RFC3720"] },
  iSCSIProtocolLevel: {
    kind: "numeric",
    field: "protocolLevel",
    min: 0,
    max: 31,
    combine: "min",
    ours: () => 1,
    loginOnly: true,
  },
  SessionType: {
    kind: "declaration",
    field: "sessionType",
    values: ["Normal", "Discovery"],
    loginOnly: true,
  },
  InitiatorName: { kind: "declaration", field: "initiatorName", loginOnly: true },
  InitiatorAlias: { kind: "declaration", field: "initiatorAlias", loginOnly: false },
  TargetName: { kind: "declaration", field: "targetName", loginOnly: true },
  TargetAlias: { kind: "target-only" },
  TargetPortalGroupTag: { kind: "target-only" },
  TargetAddress: { kind: "target-only" },
};

/** Parses a numeric value: decimal, or hex with a 0x prefix. NaN when malformed. */
export function parseNumber(v: string): number {
  if (/^[0-9]{1,10}$/.test(v)) return Number(v);
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(v)) return parseInt(v.slice(2), 16);
  return NaN;
}

function parseBoolean(v: string): boolean | undefined {
  if (v === "Yes") return true;
  if (v === "No") return false;
  return undefined;
}

const RESPONSE_VALUES = new Set(["NotUnderstood", "Irrelevant", "Reject"]);

/**
 * Answers one PDU's worth of offers. Keys the caller handles itself (security keys, SendTargets)
 * must be filtered out before. Unknown and X- keys are answered NotUnderstood; malformed or
 * out-of-range values Reject (the previous value stays in force).
 */
export function negotiate(
  offers: KeyValues,
  current: OperationalParams,
  policy: TargetPolicy,
  phase: Phase,
): NegotiationResult {
  const params: OperationalParams = { ...current };
  const responses: KeyValues = [];
  const declarations: Declarations = {};
  const rejected: string[] = [];
  const reject = (key: string): void => {
    responses.push([key, "Reject"]);
    rejected.push(key);
  };

  for (const [key, value] of offers) {
    const spec = KEY_TABLE[key];
    if (!spec) {
      responses.push([key, "NotUnderstood"]);
      continue;
    }
    // an initiator echoing one of the special answers is not an offer; nothing to answer
    if (RESPONSE_VALUES.has(value)) continue;
    switch (spec.kind) {
      case "numeric": {
        if (phase === "full-feature" && spec.loginOnly) {
          reject(key);
          break;
        }
        const n = parseNumber(value);
        if (!Number.isFinite(n) || n < spec.min || n > spec.max) {
          reject(key);
          break;
        }
        if (spec.combine === "declarative") {
          params[spec.field] = n;
          // the target's own declaration is added by the login layer once
          break;
        }
        const ours = spec.ours(policy);
        const result = spec.combine === "min" ? Math.min(n, ours) : Math.max(n, ours);
        params[spec.field] = result;
        responses.push([key, String(result)]);
        break;
      }
      case "boolean": {
        if (phase === "full-feature") {
          reject(key);
          break;
        }
        const b = parseBoolean(value);
        if (b === undefined) {
          reject(key);
          break;
        }
        const ours = spec.ours(policy);
        const result = spec.combine === "and" ? b && ours : b || ours;
        params[spec.field] = result;
        responses.push([key, result ? "Yes" : "No"]);
        break;
      }
      case "digest": {
        if (phase === "full-feature") {
          reject(key);
          break;
        }
        const offered = value.split(",");
        const supported = spec.ours(policy);
        const pick = offered.find((o): o is DigestName => (supported as string[]).includes(o));
        if (!pick) {
          reject(key);
          break;
        }
        params[spec.field] = pick;
        responses.push([key, pick]);
        break;
      }
      case "list": {
        const pick = value.split(",").find((o) => spec.ours.includes(o));
        if (!pick) {
          reject(key);
          break;
        }
        params[spec.field] = pick;
        responses.push([key, pick]);
        break;
      }
      case "declaration": {
        if (phase === "full-feature" && spec.loginOnly) {
          reject(key);
          break;
        }
        if (value === "" || (spec.values && !spec.values.includes(value))) {
          reject(key);
          break;
        }
        declarations[spec.field] = value;
        break;
      }
      case "target-only":
        reject(key);
        break;
      case "irrelevant":
        responses.push([key, "Irrelevant"]);
        break;
    }
  }

  // FirstBurstLength never exceeds MaxBurstLength
  if (params.firstBurstLength > params.maxBurstLength) {
    params.firstBurstLength = params.maxBurstLength;
    const i = responses.findIndex(([k]) => k === "FirstBurstLength");
    if (i >= 0) responses[i] = ["FirstBurstLength", String(params.firstBurstLength)];
  }
  // with solicited-only data and no immediate data, FirstBurstLength has no meaning
  if (params.initialR2T && !params.immediateData) {
    const i = responses.findIndex(([k]) => k === "FirstBurstLength");
    if (i >= 0) responses[i] = ["FirstBurstLength", "Irrelevant"];
  }
  return { params, responses, declarations, rejected };
}
