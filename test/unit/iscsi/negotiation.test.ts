import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defaultTargetPolicy,
  negotiate,
  rfcDefaults,
  type OperationalParams,
} from "../../../target/iscsi/negotiation.js";

const policy = {
  ...defaultTargetPolicy(),
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  maxOutstandingR2T: 8,
};

interface Case {
  key: string;
  offer: string;
  answer: string | undefined;
  field?: keyof OperationalParams;
  value?: unknown;
}

// one row per key and result function (RFC 7143 §13)
const cases: Case[] = [
  {
    key: "MaxRecvDataSegmentLength",
    offer: "65536",
    answer: undefined,
    field: "maxRecvDataSegmentLength",
    value: 65536,
  },
  {
    key: "MaxRecvDataSegmentLength",
    offer: "511",
    answer: "Reject",
    field: "maxRecvDataSegmentLength",
    value: 8192,
  },
  { key: "MaxRecvDataSegmentLength", offer: "16777216", answer: "Reject" },
  { key: "MaxBurstLength", offer: "16776192", answer: "1048576", field: "maxBurstLength", value: 1048576 },
  { key: "MaxBurstLength", offer: "4096", answer: "4096", field: "maxBurstLength", value: 4096 },
  { key: "MaxBurstLength", offer: "0x1000", answer: "4096" },
  { key: "MaxBurstLength", offer: "abc", answer: "Reject" },
  { key: "FirstBurstLength", offer: "16776192", answer: "262144", field: "firstBurstLength", value: 262144 },
  { key: "FirstBurstLength", offer: "100", answer: "Reject" },
  { key: "MaxOutstandingR2T", offer: "1", answer: "1", field: "maxOutstandingR2T", value: 1 },
  { key: "MaxOutstandingR2T", offer: "100", answer: "8" },
  { key: "MaxOutstandingR2T", offer: "0", answer: "Reject" },
  { key: "ErrorRecoveryLevel", offer: "2", answer: "0", field: "errorRecoveryLevel", value: 0 },
  { key: "ErrorRecoveryLevel", offer: "3", answer: "Reject" },
  { key: "DefaultTime2Retain", offer: "0", answer: "0", field: "defaultTime2Retain", value: 0 },
  { key: "DefaultTime2Retain", offer: "3600", answer: "20" },
  { key: "DefaultTime2Retain", offer: "3601", answer: "Reject" },
  { key: "MaxConnections", offer: "8", answer: "1", field: "maxConnections", value: 1 },
  { key: "DefaultTime2Wait", offer: "0", answer: "2", field: "defaultTime2Wait", value: 2 },
  { key: "DefaultTime2Wait", offer: "10", answer: "10", field: "defaultTime2Wait", value: 10 },
  { key: "InitialR2T", offer: "No", answer: "No", field: "initialR2T", value: false },
  { key: "InitialR2T", offer: "Yes", answer: "Yes", field: "initialR2T", value: true },
  { key: "InitialR2T", offer: "maybe", answer: "Reject" },
  { key: "DataPDUInOrder", offer: "No", answer: "Yes", field: "dataPDUInOrder", value: true },
  { key: "DataSequenceInOrder", offer: "No", answer: "Yes" },
  { key: "ImmediateData", offer: "Yes", answer: "Yes", field: "immediateData", value: true },
  { key: "ImmediateData", offer: "No", answer: "No", field: "immediateData", value: false },
  { key: "IFMarker", offer: "Yes", answer: "No", field: "ifMarker", value: false },
  { key: "OFMarker", offer: "No", answer: "No" },
  { key: "OFMarkInt", offer: "2048~8192", answer: "Irrelevant" },
  { key: "HeaderDigest", offer: "CRC32C,None", answer: "CRC32C", field: "headerDigest", value: "CRC32C" },
  { key: "HeaderDigest", offer: "None,CRC32C", answer: "None", field: "headerDigest", value: "None" },
  { key: "DataDigest", offer: "X-vendor,CRC32C", answer: "CRC32C", field: "dataDigest", value: "CRC32C" },
  { key: "DataDigest", offer: "MD5", answer: "Reject" },
  { key: "TaskReporting", offer: "FastAbort,RFC3720", answer: "RFC3720" },
  { key: "iSCSIProtocolLevel", offer: "2", answer: "1" },
  { key: "X-com.example.Foo", offer: "1", answer: "NotUnderstood" },
  { key: "X#vendor", offer: "1", answer: "NotUnderstood" },
  { key: "Bogus", offer: "1", answer: "NotUnderstood" },
  { key: "TargetAlias", offer: "x", answer: "Reject" },
  { key: "TargetPortalGroupTag", offer: "1", answer: "Reject" },
  { key: "SessionType", offer: "Normal", answer: undefined },
  { key: "SessionType", offer: "Weird", answer: "Reject" },
  { key: "InitiatorName", offer: "iqn.x", answer: undefined },
  { key: "MaxBurstLength", offer: "Reject", answer: undefined },
];

test("each key's offer gets the RFC 7143 result", () => {
  for (const c of cases) {
    const r = negotiate([[c.key, c.offer]], rfcDefaults(), policy, "login");
    const answer = r.responses.find(([k]) => k === c.key)?.[1];
    assert.equal(answer, c.answer, `${c.key}=${c.offer}`);
    if (c.field) assert.equal(r.params[c.field], c.value, `${c.key}=${c.offer} → ${c.field}`);
  }
});

test("FirstBurstLength never exceeds MaxBurstLength", () => {
  const r = negotiate(
    [
      ["MaxBurstLength", "8192"],
      ["FirstBurstLength", "65536"],
    ],
    rfcDefaults(),
    policy,
    "login",
  );
  assert.equal(r.params.firstBurstLength, 8192);
  assert.deepEqual(r.responses, [
    ["MaxBurstLength", "8192"],
    ["FirstBurstLength", "8192"],
  ]);
});

test("FirstBurstLength is Irrelevant with InitialR2T=Yes and ImmediateData=No", () => {
  const r = negotiate(
    [
      ["InitialR2T", "Yes"],
      ["ImmediateData", "No"],
      ["FirstBurstLength", "65536"],
    ],
    rfcDefaults(),
    policy,
    "login",
  );
  assert.deepEqual(r.responses.at(-1), ["FirstBurstLength", "Irrelevant"]);
});

test("login-only keys are refused in full feature phase; MaxRecvDataSegmentLength may change", () => {
  const r = negotiate(
    [
      ["MaxBurstLength", "4096"],
      ["MaxRecvDataSegmentLength", "4096"],
      ["InitialR2T", "No"],
    ],
    rfcDefaults(),
    policy,
    "full-feature",
  );
  assert.deepEqual(r.responses, [
    ["MaxBurstLength", "Reject"],
    ["InitialR2T", "Reject"],
  ]);
  assert.equal(r.params.maxRecvDataSegmentLength, 4096);
  assert.equal(r.params.maxBurstLength, 262144);
});

test("declarations are collected, not answered", () => {
  const r = negotiate(
    [
      ["InitiatorName", "iqn.2026-11.dev.hasan:a"],
      ["InitiatorAlias", "host-a"],
      ["TargetName", "iqn.2026-11.dev.hasan:t"],
      ["SessionType", "Discovery"],
    ],
    rfcDefaults(),
    policy,
    "login",
  );
  assert.deepEqual(r.responses, []);
  assert.deepEqual(r.declarations, {
    initiatorName: "iqn.2026-11.dev.hasan:a",
    initiatorAlias: "host-a",
    targetName: "iqn.2026-11.dev.hasan:t",
    sessionType: "Discovery",
  });
});
