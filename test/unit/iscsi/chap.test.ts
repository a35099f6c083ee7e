import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chapDigest,
  chapStep,
  decodeBinary,
  selectAlgorithm,
  type ChapConfig,
  type ChapState,
} from "../../../target/iscsi/chap.js";

const challenge = Buffer.from("0102030405060708090a0b0c0d0e0f10", "hex");

test("CHAP responses match independently computed vectors (MD5, SHA-1, SHA-256)", () => {
  assert.equal(
    chapDigest(5, 0x2a, "mysecret12345", challenge).toString("hex"),
    "4953d2369e404e5efa61d2d61ad45eb5",
  );
  assert.equal(
    chapDigest(6, 0, "mysecret12345", challenge).toString("hex"),
    "20feafd9f2c5b53b3f38b7665b724bb9d8ac116a",
  );
  assert.equal(
    chapDigest(7, 0xff, "mysecret12345", challenge).toString("hex"),
    "a4372ceb114545be53f144c24013e576374bac0f7aaeffad44ca5df29ea6b697",
  );
});

test("CHAP_A picks the first algorithm we implement from odd lists", () => {
  const cases: [string, number | undefined][] = [
    ["5", 5],
    ["56,5", 5],
    ["7,5", 7],
    ["56", undefined],
    ["x,,5", 5],
    ["", undefined],
    ["99999999999,8", 8],
  ];
  for (const [offer, want] of cases) assert.equal(selectAlgorithm(offer), want, offer);
});

test("binary values decode from hex (any case, odd length) and base64", () => {
  assert.deepEqual(decodeBinary("0x0102"), Buffer.from([1, 2]));
  assert.deepEqual(decodeBinary("0X0aFf"), Buffer.from([0x0a, 0xff]));
  assert.deepEqual(decodeBinary("0x102"), Buffer.from([1, 2]));
  assert.deepEqual(decodeBinary("0bAQIDBAUGBwgJCgsMDQ4PEA=="), challenge);
  for (const bad of ["", "0x", "12", "0xzz", "0b", "0b***"]) assert.equal(decodeBinary(bad), undefined, bad);
});

const config: ChapConfig = {
  initiator: { user: "alice", secret: "mysecret12345" },
  target: { user: "tgt", secret: "targetsecret99" },
};
const fixedRandom = (n: number): Buffer => (n === 1 ? Buffer.from([0x2a]) : challenge.subarray(0, n));

function challenged(): ChapState {
  const r = chapStep({ step: "await-algorithm" }, new Map([["CHAP_A", "5"]]), config, fixedRandom);
  assert.deepEqual(r.response, [
    ["CHAP_A", "5"],
    ["CHAP_I", "42"],
    ["CHAP_C", "0x0102030405060708090a0b0c0d0e0f10"],
  ]);
  return r.state;
}

test("one-way CHAP succeeds with the right response in hex or base64", () => {
  for (const enc of ["hex", "base64"] as const) {
    const resp = chapDigest(5, 42, "mysecret12345", challenge);
    const value = enc === "hex" ? "0x" + resp.toString("hex") : "0b" + resp.toString("base64");
    const r = chapStep(
      challenged(),
      new Map([
        ["CHAP_N", "alice"],
        ["CHAP_R", value],
      ]),
      config,
      fixedRandom,
    );
    assert.equal(r.failure, undefined);
    assert.equal(r.state.step, "done");
    assert.deepEqual(r.response, []);
  }
});

test("wrong secret, wrong user, and missing response fail", () => {
  const good = "0x" + chapDigest(5, 42, "mysecret12345", challenge).toString("hex");
  const bad = "0x" + chapDigest(5, 42, "other", challenge).toString("hex");
  const cases: [string, string][][] = [
    [
      ["CHAP_N", "alice"],
      ["CHAP_R", bad],
    ],
    [
      ["CHAP_N", "bob"],
      ["CHAP_R", good],
    ],
    [["CHAP_N", "alice"]],
    [
      ["CHAP_N", "alice"],
      ["CHAP_R", "nothex"],
    ],
  ];
  for (const keys of cases)
    assert.ok(chapStep(challenged(), new Map(keys), config, fixedRandom).failure, JSON.stringify(keys));
});

test("mutual CHAP answers the initiator's challenge and refuses a reflected one", () => {
  const resp = "0x" + chapDigest(5, 42, "mysecret12345", challenge).toString("hex");
  const theirs = Buffer.alloc(16, 0x77);
  const r = chapStep(
    challenged(),
    new Map([
      ["CHAP_N", "alice"],
      ["CHAP_R", resp],
      ["CHAP_I", "9"],
      ["CHAP_C", "0x" + theirs.toString("hex")],
    ]),
    config,
    fixedRandom,
  );
  assert.equal(r.failure, undefined);
  assert.deepEqual(r.response, [
    ["CHAP_N", "tgt"],
    ["CHAP_R", "0x" + chapDigest(5, 9, "targetsecret99", theirs).toString("hex")],
  ]);
  const reflected = chapStep(
    challenged(),
    new Map([
      ["CHAP_N", "alice"],
      ["CHAP_R", resp],
      ["CHAP_I", "9"],
      ["CHAP_C", "0x0102030405060708090a0b0c0d0e0f10"],
    ]),
    config,
    fixedRandom,
  );
  assert.match(reflected.failure ?? "", /reflected/);
  const noMutual = chapStep(
    challenged(),
    new Map([
      ["CHAP_N", "alice"],
      ["CHAP_R", resp],
      ["CHAP_I", "9"],
      ["CHAP_C", "0x" + theirs.toString("hex")],
    ]),
    { initiator: config.initiator },
    fixedRandom,
  );
  assert.match(noMutual.failure ?? "", /mutual/);
});

test("an algorithm list with nothing we implement is refused", () => {
  const r = chapStep({ step: "await-algorithm" }, new Map([["CHAP_A", "56,99"]]), config, fixedRandom);
  assert.ok(r.failure);
  assert.deepEqual(r.response, [["CHAP_A", "Reject"]]);
});
