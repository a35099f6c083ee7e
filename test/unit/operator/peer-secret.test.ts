import { test } from "node:test";
import assert from "node:assert/strict";
import { createdOnceChildren } from "../../../operator/reconcile/generated-secrets.js";
import {
  decidePeerSecret,
  ensurePeerSecret,
  freshPeerSecretData,
  type SecretView,
} from "../../../operator/reconcile/peer-secret.js";
import { secretProblem } from "../../../target/secret-rules.js";
import { createdOnceSecretsClient, target } from "./fixtures.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const never = () => {
  throw new Error("no new value may be drawn when one exists");
};

test("an existing generated peer Secret is kept as it is: no new value is drawn, nothing is written", () => {
  const d = decidePeerSecret(target(), { data: { secret: b64("the value both pods hold") } }, never);
  assert.deepEqual(d, { action: "keep", name: "data-peer" });
});

test("a missing generated peer Secret is created (a create, owned by the target) with 32 fresh random bytes", () => {
  const d = decidePeerSecret(target(), undefined);
  assert.equal(d.action, "create");
  if (d.action !== "create") return;
  assert.equal(d.object.kind, "Secret");
  assert.equal(d.object.metadata.name, "data-peer");
  assert.equal(d.object.metadata.ownerReferences?.[0]?.uid, target().metadata.uid);
  const value = Buffer.from((d.object.data as { secret: string }).secret, "base64").toString();
  assert.match(value, /^[0-9a-f]{64}$/);
  assert.equal(
    secretProblem(value),
    undefined,
    "long enough for the target's --peer-secret-file (12 bytes at least)",
  );
  assert.notEqual(freshPeerSecretData(), freshPeerSecretData());
});

test("a generated peer Secret without a value is reported, never overwritten", () => {
  const lives: SecretView[] = [{}, { data: {} }, { data: { secret: "" } }];
  for (const live of lives) {
    const d = decidePeerSecret(target(), live, never);
    assert.equal(d.action, "refuse");
    if (d.action === "refuse") assert.match(d.error, /never overwrites .*delete it/);
  }
});

test("a user-provided peerSecretRef is left alone (never written) and keeps no generated Secret", () => {
  const t = target({ replication: { peerSecretRef: { name: "mine" } } });
  assert.deepEqual(decidePeerSecret(t, undefined, never), { action: "leave", name: "mine" });
  assert.deepEqual(
    createdOnceChildren(t).map((o) => `${o.kind}/${o.metadata.name}`),
    ["Secret/data-chap", "Secret/data-agent"],
  );
  assert.deepEqual(
    createdOnceChildren(target()).map((o) => `${o.kind}/${o.metadata.name}`),
    ["Secret/data-peer", "Secret/data-chap", "Secret/data-agent"],
  );
});

test("ensurePeerSecret on an existing Secret only reads it", async () => {
  const secrets = new Map([["data-peer", { data: { secret: b64("old") } }]]);
  const { client, calls } = createdOnceSecretsClient(secrets);
  assert.deepEqual(await ensurePeerSecret(client, target(), never), {
    name: "data-peer",
    outcome: "existing",
  });
  assert.deepEqual(calls, ["get data-peer"]);
  assert.equal(secrets.get("data-peer")!.data.secret, b64("old"));
});

test("ensurePeerSecret losing a create race (409 AlreadyExists) uses the winner's value and writes nothing more", async () => {
  const secrets = new Map<string, { data: Record<string, string> }>();
  // Another operator creates the Secret between our read and our create.
  const { client, calls } = createdOnceSecretsClient(secrets, () => {
    if (!secrets.has("data-peer")) secrets.set("data-peer", { data: { secret: b64("winner") } });
  });
  assert.deepEqual(await ensurePeerSecret(client, target()), { name: "data-peer", outcome: "lostRace" });
  assert.deepEqual(calls, ["get data-peer", "create data-peer", "get data-peer"]);
  assert.equal(secrets.get("data-peer")!.data.secret, b64("winner"));
});

test("ensurePeerSecret with a peerSecretRef reads the user's Secret and reports it missing, never creating it", async () => {
  const t = target({ replication: { peerSecretRef: { name: "mine" } } });
  const { client, calls } = createdOnceSecretsClient(new Map());
  await assert.rejects(ensurePeerSecret(client, t), /peerSecretRef: Secret mine not found/);
  assert.deepEqual(calls, ["get mine"]);
});
