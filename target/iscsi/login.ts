/**
 * The login phase (RFC 7143 §6) as a pure state machine: each Login Request moves it through the
 * security and operational stages towards full feature phase, or ends it with a status class and
 * detail. Session binding (TSIH, reinstatement) is the caller's; it is told when login completes.
 */
import { chapStep, type ChapConfig, type ChapState } from "./chap.js";
import { negotiate, rfcDefaults, type OperationalParams, type TargetPolicy } from "./negotiation.js";
import type { KeyValues } from "./text-keys.js";

export const Stage = { security: 0, operational: 1, fullFeature: 3 } as const;

/** Login Response status (class << 8 | detail), RFC 7143 §11.13.5. */
export const LoginStatus = {
  success: 0x0000,
  targetMovedTemporarily: 0x0101,
  targetMovedPermanently: 0x0102,
  initiatorError: 0x0200,
  authenticationFailure: 0x0201,
  authorizationFailure: 0x0202,
  notFound: 0x0203,
  targetRemoved: 0x0204,
  unsupportedVersion: 0x0205,
  tooManyConnections: 0x0206,
  missingParameter: 0x0207,
  cannotIncludeInSession: 0x0208,
  sessionTypeNotSupported: 0x0209,
  sessionDoesNotExist: 0x020a,
  invalidDuringLogin: 0x020b,
  targetError: 0x0300,
  serviceUnavailable: 0x0301,
  outOfResources: 0x0302,
} as const;

/** The fields of a Login Request the state machine looks at. */
export interface LoginRequest {
  transit: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** ISID as 12 hex digits. */
  isid: string;
  tsih: number;
  cid: number;
  keys: KeyValues;
}

export interface LoginConfig {
  targetName: string;
  targetAlias?: string;
  portalGroupTag: number;
  chap?: ChapConfig;
  /** Empty: any initiator. */
  allowedInitiators: readonly string[];
  policy: TargetPolicy;
  random: (n: number) => Buffer;
}

export interface LoginState {
  /** The stage the next request must be in. */
  stage: number;
  first: boolean;
  isid: string;
  tsih: number;
  cid: number;
  initiatorName?: string;
  initiatorAlias?: string;
  sessionType: "Normal" | "Discovery";
  authMethod?: "None" | "CHAP";
  chap: ChapState;
  authenticated: boolean;
  params: OperationalParams;
  /** Whether the target has declared its MaxRecvDataSegmentLength, TPGT and alias. */
  declaredLimits: boolean;
  declaredIdentity: boolean;
}

export interface LoginReply {
  transit: boolean;
  csg: number;
  nsg: number;
  keys: KeyValues;
}

export type LoginOutcome =
  | { kind: "continue"; state: LoginState; reply: LoginReply }
  /** Login completes with this reply once the caller has bound the connection to a session. */
  | { kind: "complete"; state: LoginState; reply: LoginReply }
  | { kind: "fail"; status: number; reason: string };

export function initialLoginState(): LoginState {
  return {
    stage: -1,
    first: true,
    isid: "",
    tsih: 0,
    cid: 0,
    sessionType: "Normal",
    chap: { step: "await-algorithm" },
    authenticated: false,
    params: rfcDefaults(),
    declaredLimits: false,
    declaredIdentity: false,
  };
}

const SECURITY_KEYS = new Set(["AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"]);

function fail(status: number, reason: string): LoginOutcome {
  return { kind: "fail", status, reason };
}

/** Processes one (complete, C-bit-joined) Login Request. */
export function loginStep(prev: LoginState, req: LoginRequest, cfg: LoginConfig): LoginOutcome {
  const s: LoginState = { ...prev };

  if (s.first) {
    if (req.versionMin > 0 || req.versionMax < req.versionMin) {
      return fail(
        LoginStatus.unsupportedVersion,
        `unsupported iSCSI version ${req.versionMin}..${req.versionMax}`,
      );
    }
    if (req.csg !== Stage.security && req.csg !== Stage.operational) {
      return fail(LoginStatus.initiatorError, `login cannot start in stage ${req.csg}`);
    }
    s.isid = req.isid;
    s.tsih = req.tsih;
    s.cid = req.cid;
    s.stage = req.csg;
  } else {
    if (req.isid !== s.isid || req.tsih !== s.tsih || req.cid !== s.cid) {
      return fail(LoginStatus.initiatorError, "ISID, TSIH or CID changed during login");
    }
    if (req.csg !== s.stage) {
      return fail(LoginStatus.initiatorError, `login request in stage ${req.csg}, expected ${s.stage}`);
    }
  }
  if (req.transit && !(req.nsg === Stage.operational || req.nsg === Stage.fullFeature)) {
    return fail(LoginStatus.initiatorError, `invalid next stage ${req.nsg}`);
  }
  if (req.transit && req.nsg <= req.csg) {
    return fail(LoginStatus.initiatorError, `cannot move from stage ${req.csg} to ${req.nsg}`);
  }

  const security: KeyValues = [];
  const operational: KeyValues = [];
  for (const kv of req.keys) (SECURITY_KEYS.has(kv[0]) ? security : operational).push(kv);

  // names and session type come with the first request
  const result = negotiate(operational, s.params, cfg.policy, "login");
  const d = result.declarations;
  if (d.initiatorName !== undefined) {
    if (s.initiatorName !== undefined && s.initiatorName !== d.initiatorName) {
      return fail(LoginStatus.initiatorError, "InitiatorName changed during login");
    }
    s.initiatorName = d.initiatorName;
  }
  if (d.initiatorAlias !== undefined) s.initiatorAlias = d.initiatorAlias;
  if (s.first) {
    if (result.rejected.includes("SessionType")) {
      return fail(LoginStatus.sessionTypeNotSupported, "unknown SessionType");
    }
    if (d.sessionType === "Discovery") s.sessionType = "Discovery";
    if (s.initiatorName === undefined) return fail(LoginStatus.missingParameter, "InitiatorName missing");
    if (s.sessionType === "Normal") {
      if (d.targetName === undefined) return fail(LoginStatus.missingParameter, "TargetName missing");
      if (d.targetName !== cfg.targetName)
        return fail(LoginStatus.notFound, `unknown target ${d.targetName}`);
    }
    if (cfg.allowedInitiators.length > 0 && !cfg.allowedInitiators.includes(s.initiatorName)) {
      return fail(LoginStatus.authorizationFailure, `initiator ${s.initiatorName} is not allowed`);
    }
  } else if (d.sessionType !== undefined || (d.targetName !== undefined && d.targetName !== cfg.targetName)) {
    return fail(LoginStatus.initiatorError, "SessionType or TargetName changed during login");
  }
  s.params = result.params;
  const keys: KeyValues = [...result.responses];
  if (!s.declaredIdentity && s.sessionType === "Normal") {
    // TargetPortalGroupTag goes in the first response of a normal session
    if (cfg.targetAlias) keys.push(["TargetAlias", cfg.targetAlias]);
    keys.push(["TargetPortalGroupTag", String(cfg.portalGroupTag)]);
    s.declaredIdentity = true;
  }

  if (req.csg === Stage.security) {
    const sec = new Map(security);
    const offer = sec.get("AuthMethod");
    if (offer !== undefined) {
      if (s.authMethod !== undefined) return fail(LoginStatus.initiatorError, "AuthMethod offered twice");
      const methods = offer.split(",");
      if (cfg.chap) {
        if (!methods.includes("CHAP")) {
          return fail(LoginStatus.authenticationFailure, `CHAP required, initiator offered ${offer}`);
        }
        s.authMethod = "CHAP";
      } else if (methods.includes("None")) {
        s.authMethod = "None";
        s.authenticated = true;
      } else {
        return fail(
          LoginStatus.authenticationFailure,
          `no authentication configured, initiator offered ${offer}`,
        );
      }
      keys.push(["AuthMethod", s.authMethod]);
    }
    const chapKeys = security.filter(([k]) => k !== "AuthMethod");
    if (chapKeys.length > 0) {
      if (s.authMethod !== "CHAP" || !cfg.chap) {
        return fail(LoginStatus.initiatorError, "CHAP keys without CHAP negotiated");
      }
      const step = chapStep(s.chap, sec, cfg.chap, cfg.random);
      if (step.failure) return fail(LoginStatus.authenticationFailure, step.failure);
      s.chap = step.state;
      keys.push(...step.response);
      if (s.chap.step === "done") s.authenticated = true;
    } else if (s.authMethod === "CHAP" && s.chap.step === "await-response" && req.transit) {
      return fail(LoginStatus.authenticationFailure, "CHAP response missing");
    }
    if (s.authMethod === undefined && !cfg.chap) {
      // an initiator that skips AuthMethod gets no authentication when none is configured
      s.authenticated = true;
    }
  } else {
    if (security.length > 0) {
      return fail(
        LoginStatus.initiatorError,
        `security keys in operational stage: ${security.map(([k]) => k).join(",")}`,
      );
    }
    if (cfg.chap && !s.authenticated) {
      return fail(LoginStatus.authenticationFailure, "CHAP required, initiator skipped the security stage");
    }
    if (!cfg.chap) s.authenticated = true;
    if (!s.declaredLimits) {
      keys.push(["MaxRecvDataSegmentLength", String(cfg.policy.maxRecvDataSegmentLength)]);
      s.declaredLimits = true;
    }
  }

  s.first = false;
  let transit = false;
  let nsg = 0;
  if (req.transit && s.authenticated) {
    transit = true;
    nsg = req.nsg;
  } else if (req.transit && cfg.chap && s.authMethod === undefined) {
    return fail(LoginStatus.authenticationFailure, "CHAP required, initiator did not negotiate AuthMethod");
  }
  if (transit && nsg === Stage.fullFeature && !s.declaredLimits) {
    // skipping the operational stage: declare our limits in this last response
    keys.push(["MaxRecvDataSegmentLength", String(cfg.policy.maxRecvDataSegmentLength)]);
    s.declaredLimits = true;
  }
  const reply: LoginReply = { transit, csg: req.csg, nsg, keys };
  if (transit) s.stage = nsg;
  if (transit && nsg === Stage.fullFeature) return { kind: "complete", state: s, reply };
  return { kind: "continue", state: s, reply };
}
