import { test } from "node:test";
import assert from "node:assert/strict";
import { chapDigest } from "../../../target/iscsi/chap.js";
import {
  initialLoginState,
  loginStep,
  LoginStatus,
  type LoginConfig,
  type LoginOutcome,
  type LoginRequest,
  type LoginState,
} from "../../../target/iscsi/login.js";
import { defaultTargetPolicy } from "../../../target/iscsi/negotiation.js";

const TARGET = "iqn.2026-11.dev.hasan:t";
const INITIATOR = "iqn.2026-11.dev.hasan:i";
const challenge = Buffer.alloc(16, 0xab);
const base: LoginConfig = {
  targetName: TARGET,
  targetAlias: "alias-a",
  portalGroupTag: 2,
  allowedInitiators: [],
  policy: defaultTargetPolicy(),
  random: (n) => (n === 1 ? Buffer.from([7]) : challenge.subarray(0, n)),
};
const withChap: LoginConfig = { ...base, chap: { initiator: { user: "u", secret: "s3cret-s3cret" } } };

function req(o: Partial<LoginRequest> & { keys: [string, string][] }): LoginRequest {
  return {
    transit: false,
    csg: 0,
    nsg: 0,
    versionMax: 0,
    versionMin: 0,
    isid: "400000000001",
    tsih: 0,
    cid: 0,
    ...o,
  };
}

function expectKind<K extends LoginOutcome["kind"]>(
  o: LoginOutcome,
  kind: K,
): Extract<LoginOutcome, { kind: K }> {
  assert.equal(o.kind, kind, o.kind === "fail" ? o.reason : "");
  return o as Extract<LoginOutcome, { kind: K }>;
}

const names: [string, string][] = [
  ["InitiatorName", INITIATOR],
  ["TargetName", TARGET],
];

test("operational stage straight to full feature: declares limits, TPGT and alias", () => {
  const o = expectKind(
    loginStep(
      initialLoginState(),
      req({ csg: 1, nsg: 3, transit: true, keys: [...names, ["MaxBurstLength", "65536"]] }),
      base,
    ),
    "complete",
  );
  assert.deepEqual(o.reply.keys, [
    ["MaxBurstLength", "65536"],
    ["TargetAlias", "alias-a"],
    ["TargetPortalGroupTag", "2"],
    ["MaxRecvDataSegmentLength", "262144"],
  ]);
  assert.deepEqual([o.reply.transit, o.reply.csg, o.reply.nsg], [true, 1, 3]);
  assert.equal(o.state.params.maxBurstLength, 65536);
});

test("security stage without CHAP: AuthMethod=None, then operational, then full feature", () => {
  let s: LoginState = initialLoginState();
  const a = expectKind(
    loginStep(s, req({ csg: 0, nsg: 1, transit: true, keys: [...names, ["AuthMethod", "None"]] }), base),
    "continue",
  );
  assert.deepEqual(
    a.reply.keys.find(([k]) => k === "AuthMethod"),
    ["AuthMethod", "None"],
  );
  assert.deepEqual([a.reply.transit, a.reply.nsg], [true, 1]);
  s = a.state;
  const b = expectKind(
    loginStep(s, req({ csg: 1, nsg: 3, transit: true, keys: [["HeaderDigest", "CRC32C"]] }), base),
    "complete",
  );
  assert.equal(b.state.params.headerDigest, "CRC32C");
  assert.ok(b.reply.keys.some(([k]) => k === "MaxRecvDataSegmentLength"));
  assert.ok(!b.reply.keys.some(([k]) => k === "TargetPortalGroupTag"), "TPGT only once");
});

test("CHAP exchange: transit refused until the response arrives, then allowed", () => {
  let s = initialLoginState();
  const a = expectKind(
    loginStep(s, req({ keys: [...names, ["AuthMethod", "CHAP,None"]], transit: true, nsg: 1 }), withChap),
    "continue",
  );
  assert.equal(a.reply.transit, false, "no transit before authentication");
  s = a.state;
  const b = expectKind(loginStep(s, req({ keys: [["CHAP_A", "5"]] }), withChap), "continue");
  assert.deepEqual(b.reply.keys, [
    ["CHAP_A", "5"],
    ["CHAP_I", "7"],
    ["CHAP_C", "0x" + challenge.toString("hex")],
  ]);
  s = b.state;
  const resp = "0x" + chapDigest(5, 7, "s3cret-s3cret", challenge).toString("hex");
  const c = expectKind(
    loginStep(
      s,
      req({
        keys: [
          ["CHAP_N", "u"],
          ["CHAP_R", resp],
        ],
        transit: true,
        nsg: 1,
      }),
      withChap,
    ),
    "continue",
  );
  assert.equal(c.reply.transit, true);
  assert.equal(c.state.authenticated, true);
  expectKind(loginStep(c.state, req({ csg: 1, nsg: 3, transit: true, keys: [] }), withChap), "complete");
});

test("failures map to their status codes", () => {
  const cases: [LoginConfig, LoginRequest, number][] = [
    [
      base,
      req({
        csg: 1,
        nsg: 3,
        transit: true,
        keys: [
          ["InitiatorName", INITIATOR],
          ["TargetName", "iqn.other"],
        ],
      }),
      LoginStatus.notFound,
    ],
    [
      base,
      req({ csg: 1, nsg: 3, transit: true, keys: [["TargetName", TARGET]] }),
      LoginStatus.missingParameter,
    ],
    [
      base,
      req({ csg: 1, nsg: 3, transit: true, keys: [["InitiatorName", INITIATOR]] }),
      LoginStatus.missingParameter,
    ],
    [
      base,
      req({ csg: 1, nsg: 3, transit: true, versionMin: 1, keys: names }),
      LoginStatus.unsupportedVersion,
    ],
    [
      { ...base, allowedInitiators: ["iqn.someone-else"] },
      req({ csg: 1, nsg: 3, transit: true, keys: names }),
      LoginStatus.authorizationFailure,
    ],
    [withChap, req({ csg: 1, nsg: 3, transit: true, keys: names }), LoginStatus.authenticationFailure],
    [withChap, req({ keys: [...names, ["AuthMethod", "None"]] }), LoginStatus.authenticationFailure],
    [base, req({ keys: [...names, ["AuthMethod", "CHAP"]] }), LoginStatus.authenticationFailure],
    [base, req({ csg: 3, keys: names }), LoginStatus.initiatorError],
    [base, req({ csg: 1, nsg: 0, transit: true, keys: names }), LoginStatus.initiatorError],
    [
      base,
      req({ csg: 1, nsg: 3, transit: true, keys: [...names, ["SessionType", "Other"]] }),
      LoginStatus.sessionTypeNotSupported,
    ],
    [
      base,
      req({ csg: 1, nsg: 3, transit: true, keys: [...names, ["CHAP_A", "5"]] }),
      LoginStatus.initiatorError,
    ],
  ];
  for (const [cfg, r, want] of cases) {
    const o = loginStep(initialLoginState(), r, cfg);
    assert.equal(o.kind, "fail", JSON.stringify(r.keys));
    if (o.kind === "fail") assert.equal(o.status, want, `${o.reason} for ${JSON.stringify(r)}`);
  }
});

test("discovery sessions need no TargetName and do not get a TPGT", () => {
  const o = expectKind(
    loginStep(
      initialLoginState(),
      req({
        csg: 1,
        nsg: 3,
        transit: true,
        keys: [
          ["InitiatorName", INITIATOR],
          ["SessionType", "Discovery"],
        ],
      }),
      base,
    ),
    "complete",
  );
  assert.equal(o.state.sessionType, "Discovery");
  assert.ok(!o.reply.keys.some(([k]) => k === "TargetPortalGroupTag"));
});

test("ISID, TSIH and stage must stay consistent across requests", () => {
  const a = expectKind(
    loginStep(initialLoginState(), req({ keys: [...names, ["AuthMethod", "None"]] }), base),
    "continue",
  );
  assert.equal(
    expectKind(loginStep(a.state, req({ isid: "400000000002", keys: [] }), base), "fail").status,
    LoginStatus.initiatorError,
  );
  assert.equal(
    expectKind(loginStep(a.state, req({ csg: 1, keys: [] }), base), "fail").status,
    LoginStatus.initiatorError,
  );
  assert.equal(
    expectKind(loginStep(a.state, req({ keys: [["SessionType", "Discovery"]] }), base), "fail").status,
    LoginStatus.initiatorError,
  );
});
