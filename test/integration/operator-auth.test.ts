// Secure by default, on the local cluster with real target pods: a HASanTarget without spec.auth
// gets CHAP credentials the operator generates once (<name>-chap, named in status.auth and in the
// exported PV's secretRef); an initiator without them is refused, one with them logs in; the
// Secret survives operator restarts unchanged. `spec.auth.chap: Disabled` opts out, visibly: a
// condition and a Warning Event. The agents require the pair's token: the operator still reads
// them (the pair becomes Synchronized), a pod without the token gets 401.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { echoCodeMount, echoCodeVolume, echoCommand, echoImage } from "../support/http-echo-pod.js";
import { run } from "../support/processes.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";
import { OperatorHarness, type Child } from "./operator-harness.js";

let h: OperatorHarness;
const fast = ["--status-poll-steady-ms", "1000", "--drift-check-ms", "2000"];

before(async () => {
  h = await OperatorHarness.create("hst-auth");
  await h.startOperator(fast);
});

after(async () => {
  await h?.cleanup();
});

const condition = async (name: string, type: string) =>
  (await h.target(name))?.status?.conditions?.find((c) => c.type === type);

test("without spec.auth: a generated CHAP Secret, used by the pods and the PV; no credentials, no login", () =>
  h.guard(async () => {
    await h.applyTarget("gen", {
      capacity: "32Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
    });
    await h.applyTarget("open", { capacity: "32Mi", auth: { chap: "Disabled" } });
    const secret = await h.waitFor("generated CHAP Secret", () => h.child("v1", "Secret", "gen-chap"));
    assert.equal((secret as Child & { type?: string }).type, "kubernetes.io/iscsi-chap");
    await h.waitSynchronized("gen");
    const t = await h.target("gen");
    assert.deepEqual(t?.status?.auth, { mode: "CHAP", chapSecretName: "gen-chap", generated: true });
    const c = await condition("gen", "AuthenticationRequired");
    assert.equal(c?.status, "True");
    assert.equal(c?.reason, "ChapGenerated");

    // How a client logs in: status.auth names the Secret; it holds the user name and the secret.
    const chap = await h.chapCredentials("gen");
    assert.equal(chap.secretName, "gen-chap");
    assert.equal(chap.user, "gen");
    assert.ok(Buffer.byteLength(chap.secret) >= 12, "a secret of 12 bytes or more");

    const pv = await h.waitFor("exported PV", () =>
      h.child("v1", "PersistentVolume", `hasan-${h.namespace}-gen`, true),
    );
    const iscsi = (pv.spec as { iscsi: Record<string, unknown> }).iscsi;
    assert.equal(iscsi.chapAuthSession, true);
    assert.deepEqual(iscsi.secretRef, { name: "gen-chap", namespace: h.namespace });

    const [portalA, portalB] = t?.status?.portals ?? [];
    const iqn = t?.status?.iqn;
    assert.ok(portalA && portalB && iqn, "status names both portals and the IQN");
    const without = await qemuIo(`iscsi://${portalA}/${iqn}/0`, ["read 0 4k"]);
    assert.equal(without.ok, false, "an initiator without credentials is refused");
    assert.match(without.stdout + without.stderr, /auth|login/i);
    const wrong = await qemuIo(`iscsi://gen%not-the-secret-at-all@${portalA}/${iqn}/0`, ["read 0 4k"]);
    assert.equal(wrong.ok, false, "wrong credentials are refused");
    const inq = await run("iscsi-inq", [`iscsi://${portalB}/${iqn}/0`], { timeoutMs: 60_000 });
    assert.notEqual(inq.code, 0, `iscsi-inq without credentials: ${inq.stdout}${inq.stderr}`);
    const url = (portal: string) => `iscsi://${chap.user}%${chap.secret}@${portal}/${iqn}/0`;
    await qemuIoOk(url(portalA), ["write -P 0x5a 0 1M"]);
    await qemuIoOk(url(portalB), ["read -P 0x5a 0 1M"]);
    const inqOk = await run("iscsi-inq", [url(portalB)], { timeoutMs: 60_000 });
    assert.equal(inqOk.code, 0, inqOk.stderr);
    assert.match(inqOk.stdout, /HASAN/);
  }));

test("the generated Secrets are never rewritten: not by passes, drift checks or an operator restart", () =>
  h.guard(async () => {
    const snapshot = async () =>
      Promise.all(
        ["gen-chap", "gen-agent", "gen-peer"].map(async (n) => {
          const s = await h.child("v1", "Secret", n);
          assert.ok(s, n);
          return { name: n, uid: s.metadata.uid, rv: s.metadata.resourceVersion, data: s.data };
        }),
      );
    const before = await snapshot();
    const passes = await h.metric("hasan_operator_reconciles_total");
    await h.waitFor(
      "reconcile passes and a drift check",
      async () => (await h.metric("hasan_operator_reconciles_total")) >= passes + 6,
    );
    await new Promise((r) => setTimeout(r, 2500));
    await h.stopOperator();
    await h.startOperator(fast);
    const after = await h.metric("hasan_operator_reconciles_total");
    await h.waitFor(
      "passes of the restarted operator",
      async () => (await h.metric("hasan_operator_reconciles_total")) >= after + 6,
    );
    assert.deepEqual(await snapshot(), before);
    await h.waitSynchronized("gen");
  }));

test("chap: Disabled: login without credentials, AuthenticationRequired False (ChapDisabled) and a Warning Event", () =>
  h.guard(async () => {
    await h.waitSynchronized("open");
    const t = await h.target("open");
    assert.deepEqual(t?.status?.auth, { mode: "Disabled", generated: false });
    assert.equal(await h.child("v1", "Secret", "open-chap"), undefined, "no CHAP Secret");
    const c = await condition("open", "AuthenticationRequired");
    assert.equal(c?.status, "False");
    assert.equal(c?.reason, "ChapDisabled");
    assert.match(c?.message ?? "", /without credentials/);
    const events = await h.waitFor("the Warning Event", async () => {
      const list = await h.client.list<{
        type: string;
        reason: string;
        message: string;
        involvedObject: { name: string };
      }>("v1", "Event", h.namespace);
      const e = list.items.filter((x) => x.involvedObject.name === "open" && x.reason === "ChapDisabled");
      return e.length ? e : undefined;
    });
    assert.equal(events[0]?.type, "Warning");
    assert.equal(events.length, 1, "one Event, not one per pass");
    const [portalA] = t!.status!.portals!;
    await qemuIoOk(`iscsi://${portalA}/${t!.status!.iqn}/0`, ["write -P 0x33 0 64k", "read -P 0x33 0 64k"]);
  }));

test("the agents require the pair's token: the operator reads them, a pod without the token gets 401", () =>
  h.guard(async () => {
    // The operator reads /status with the token: the pair reached Synchronized above, and its
    // nodes show the agents' own words.
    const t = await h.target("gen");
    assert.deepEqual(
      t?.status?.nodes?.map((n) => n.state),
      ["Working", "Working"],
    );
    const podA = (await h.child("v1", "Pod", "gen-a")) as Child & { status?: { podIP?: string } };
    const agent = `http://${podA.status?.podIP}:8080`;
    const token = await h.agentToken("gen");
    assert.match(token, /^[0-9a-f]{64}$/);
    // from the host: without the token, with another, with the pair's
    assert.equal((await fetch(`${agent}/status`)).status, 401);
    const post = (headers: Record<string, string>) =>
      fetch(`${agent}/split-brain/resolve`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ discard: "a" }),
      });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: `Bearer ${"0".repeat(64)}` })).status, 403);
    assert.equal(
      (await fetch(`${agent}/status`, { headers: { authorization: `Bearer ${token}` } })).status,
      200,
    );
    assert.equal((await fetch(`${agent}/disruption-safe`)).status, 200, "the kubelet's probe needs no token");
    assert.deepEqual(
      (await h.target("gen"))?.status?.nodes?.map((n) => n.state),
      ["Working", "Working"],
      "nothing was discarded",
    );

    // from a pod in the cluster that has no token
    await h.client.create({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "curious", namespace: h.namespace },
      spec: {
        terminationGracePeriodSeconds: 1,
        volumes: [echoCodeVolume],
        containers: [
          {
            name: "echo",
            image: echoImage,
            command: echoCommand,
            args: ["8080"],
            volumeMounts: [echoCodeMount],
            readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    });
    const curious = await h.waitFor(
      "pod curious Running",
      async () => {
        const p = (await h.child("v1", "Pod", "curious")) as Child & {
          status?: { podIP?: string; conditions?: { type: string; status: string }[] };
        };
        return p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? p : undefined;
      },
      120_000,
    );
    const via = (url: string) => `http://${curious.status?.podIP}:8080/fetch?url=${encodeURIComponent(url)}`;
    const svc = (await h.child("v1", "Service", "gen-a"))!.spec as { clusterIP: string };
    for (const url of [`${agent}/status`, `http://${svc.clusterIP}:8080/status`]) {
      const r = (await (await fetch(via(url))).json()) as { status: number; body: string };
      assert.equal(r.status, 401, `${url}: ${r.body}`);
      assert.doesNotMatch(r.body, /initiator|iqn\./);
    }
  }));
