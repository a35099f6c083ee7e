// CHAP by default and the agent token, the pure parts: where credentials come from, the Secrets
// generated once (created-once-secret.ts), what the pods and the PV get, the status and the
// condition, and the operator re-reading a token the agent refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { KubeClient } from "../../../operator/kit/kube-client.js";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";
import {
  authStatus,
  chapSecretName,
  chapSource,
  madeOpenBeforeChapDefault,
} from "../../../operator/reconcile/auth.js";
import { AGENT_TOKEN_SECRET } from "../../../operator/reconcile/agent-token-secret.js";
import { GENERATED_CHAP_SECRET, chapUsersOf } from "../../../operator/reconcile/chap-secret.js";
import {
  decideCreatedOnce,
  ensureCreatedOnce,
  type SecretView,
} from "../../../operator/reconcile/created-once-secret.js";
import { desiredChildren, type KubeObject } from "../../../operator/reconcile/desired-children.js";
import { authDisabledEvent, conditionsFrom, stampConditions } from "../../../operator/status/conditions.js";
import { AgentStatusCache } from "../../../operator/status/agent-client.js";
import { AgentTokens } from "../../../operator/status/agent-token.js";
import { secretProblem } from "../../../target/secret-rules.js";
import { agent, createdOnceSecretsClient, node, target } from "./fixtures.js";

const never = () => {
  throw new Error("no new value may be drawn when one exists");
};
const decoded = (o: KubeObject) =>
  Object.fromEntries(
    Object.entries(o.data as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, "base64").toString(),
    ]),
  );
const observed = { serviceIPs: { a: "10.214.0.10", b: "10.214.0.11" }, bothWorking: true };
const defaults = { image: "img" };
type PodJson = {
  spec: {
    containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
    volumes: { name: string; secret?: { secretName: string; items: { key: string; path: string }[] } }[];
  };
};
const podOf = (objs: KubeObject[]) =>
  objs.find((o) => o.kind === "Pod" && o.metadata.name === "data-a") as unknown as PodJson | undefined;
const flag = (args: string[], f: string) => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);

test("CHAP is required unless explicitly disabled: a generated Secret without chapSecretRef, the user's with it", () => {
  assert.deepEqual(chapSource(target()), { kind: "generated", name: "data-chap" });
  assert.deepEqual(chapSource(target({ auth: { allowedInitiators: [] } })), {
    kind: "generated",
    name: "data-chap",
  });
  assert.deepEqual(chapSource(target({ auth: { chapSecretRef: { name: "mine" } } })), {
    kind: "user",
    name: "mine",
  });
  assert.deepEqual(chapSource(target({ auth: { chap: "Disabled" } })), { kind: "disabled", keptOpen: false });
  assert.deepEqual(authStatus(target()), { mode: "CHAP", chapSecretName: "data-chap", generated: true });
  assert.deepEqual(authStatus(target({ auth: { mutual: true, chapSecretRef: { name: "m" } } })), {
    mode: "MutualCHAP",
    chapSecretName: "m",
    generated: false,
  });
  assert.deepEqual(authStatus(target({ auth: { chap: "Disabled" } })), {
    mode: "Disabled",
    generated: false,
  });
});

test("opting out takes chap: Disabled alone: with chapSecretRef or mutual the spec is refused", () => {
  const spec = (auth: unknown) => HASanTargetSpecSchema.safeParse({ capacity: "1Gi", auth });
  assert.equal(spec({ chap: "Disabled" }).success, true);
  assert.equal(spec({ chap: "Required", chapSecretRef: { name: "x" } }).success, true);
  const both = spec({ chap: "Disabled", chapSecretRef: { name: "x" } });
  assert.equal(both.success, false);
  assert.match(JSON.stringify(both.error?.issues), /cannot be set with chap: Disabled/);
  assert.equal(spec({ chap: "Disabled", mutual: true }).success, false);
  assert.equal(spec({ chap: "Off" }).success, false);
});

test("the generated CHAP Secret: type kubernetes.io/iscsi-chap, the target's user name and 32 random characters", () => {
  const d = decideCreatedOnce(GENERATED_CHAP_SECRET, target(), undefined);
  assert.equal(d.action, "create");
  if (d.action !== "create") return;
  assert.equal(d.object.type, "kubernetes.io/iscsi-chap");
  assert.equal(d.object.metadata.name, "data-chap");
  assert.equal(d.object.metadata.ownerReferences?.[0]?.uid, target().metadata.uid);
  const v = decoded(d.object);
  assert.deepEqual(Object.keys(v).sort(), ["node.session.auth.password", "node.session.auth.username"]);
  assert.equal(v["node.session.auth.username"], "data");
  assert.match(v["node.session.auth.password"]!, /^[A-Za-z0-9_-]{32}$/);
  assert.equal(secretProblem(v["node.session.auth.password"]!), undefined);
  // what the operator then reads back for the pods' flags
  assert.deepEqual(chapUsersOf(target(), d.object.data as Record<string, string>), { username: "data" });
  const again = decideCreatedOnce(GENERATED_CHAP_SECRET, target(), undefined);
  assert.notDeepEqual(again.action === "create" && decoded(again.object), v, "fresh every time");
});

test("with spec.auth.mutual the generated Secret also has the target's credentials, with a different secret", () => {
  const t = target({ auth: { mutual: true } });
  const d = decideCreatedOnce(GENERATED_CHAP_SECRET, t, undefined);
  assert.equal(d.action, "create");
  if (d.action !== "create") return;
  const v = decoded(d.object);
  assert.equal(v["node.session.auth.username_in"], "data-target");
  assert.equal(secretProblem(v["node.session.auth.password_in"]!), undefined);
  assert.notEqual(v["node.session.auth.password_in"], v["node.session.auth.password"]);
  assert.deepEqual(chapUsersOf(t, d.object.data as Record<string, string>), {
    username: "data",
    mutualUsername: "data-target",
  });
});

test("an existing generated CHAP Secret is kept as it is; one the target would refuse is reported, never rewritten", () => {
  const b64 = (o: Record<string, string>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
  const good = b64({ "node.session.auth.username": "data", "node.session.auth.password": "x".repeat(32) });
  assert.deepEqual(decideCreatedOnce(GENERATED_CHAP_SECRET, target(), { data: good }, never), {
    action: "keep",
    name: "data-chap",
  });
  const bad: [Record<string, string>, RegExp][] = [
    [{ "node.session.auth.username": "data", "node.session.auth.password": "short" }, /5 bytes long/],
    [{ "node.session.auth.password": "x".repeat(32) }, /has no node.session.auth.username/],
  ];
  for (const [data, why] of bad) {
    const d = decideCreatedOnce(GENERATED_CHAP_SECRET, target(), { data: b64(data) }, never);
    assert.equal(d.action, "refuse");
    if (d.action === "refuse") {
      assert.match(d.error, why);
      assert.match(d.error, /never overwrites .*delete it/);
    }
  }
  // mutual switched on after the Secret was generated without the target's credentials
  const d = decideCreatedOnce(
    GENERATED_CHAP_SECRET,
    target({ auth: { mutual: true } }),
    { data: good },
    never,
  );
  assert.equal(d.action, "refuse");
  if (d.action === "refuse") assert.match(d.error, /has no node.session.auth.username_in/);
});

test("no CHAP Secret is generated for a user's chapSecretRef or with CHAP disabled", () => {
  for (const auth of [{ chapSecretRef: { name: "mine" } }, { chap: "Disabled" as const }])
    assert.deepEqual(decideCreatedOnce(GENERATED_CHAP_SECRET, target({ auth }), undefined, never), {
      action: "none",
    });
});

test("the agent token Secret: <name>-agent, key token, 64 hex characters; kept once it exists", () => {
  const d = decideCreatedOnce(AGENT_TOKEN_SECRET, target(), undefined);
  assert.equal(d.action, "create");
  if (d.action !== "create") return;
  assert.equal(d.object.metadata.name, "data-agent");
  assert.match(decoded(d.object).token!, /^[0-9a-f]{64}$/);
  const live: SecretView = { data: d.object.data as Record<string, string> };
  assert.deepEqual(decideCreatedOnce(AGENT_TOKEN_SECRET, target(), live, never), {
    action: "keep",
    name: "data-agent",
  });
  const short = decideCreatedOnce(AGENT_TOKEN_SECRET, target(), { data: { token: "YWJj" } }, never);
  assert.equal(short.action, "refuse");
});

test("ensureCreatedOnce: an existing Secret is only read; a lost create race (409) reads the winner's", async () => {
  const secrets = new Map<string, { data: Record<string, string> }>();
  const race: { before?: () => void } = {};
  const { client, calls } = createdOnceSecretsClient(secrets, () => race.before?.());
  assert.deepEqual(await ensureCreatedOnce(client, AGENT_TOKEN_SECRET, target()), {
    name: "data-agent",
    outcome: "created",
  });
  const value = secrets.get("data-agent")!.data.token;
  assert.deepEqual(await ensureCreatedOnce(client, AGENT_TOKEN_SECRET, target(), never), {
    name: "data-agent",
    outcome: "existing",
  });
  assert.equal(secrets.get("data-agent")!.data.token, value, "never rewritten");
  race.before = () => {
    if (!secrets.has("data-chap"))
      secrets.set("data-chap", {
        data: {
          "node.session.auth.username": Buffer.from("data").toString("base64"),
          "node.session.auth.password": Buffer.from("the-winner's-secret").toString("base64"),
        },
      });
  };
  calls.length = 0;
  assert.deepEqual(await ensureCreatedOnce(client, GENERATED_CHAP_SECRET, target()), {
    name: "data-chap",
    outcome: "lostRace",
  });
  assert.deepEqual(calls, ["get data-chap", "create data-chap", "get data-chap"]);
});

test("pods and the PV use the generated CHAP Secret; every pod mounts the agent token and passes --agent-token-file", () => {
  const objs = desiredChildren(
    target({ export: { persistentVolume: {} } }),
    { ...observed, chap: { username: "data" } },
    defaults,
  );
  const pod = podOf(objs)!;
  const c = pod.spec.containers[0]!;
  assert.equal(flag(c.args, "--chap-user"), "data");
  assert.equal(flag(c.args, "--chap-secret-file"), "/etc/hasan/chap/secret");
  assert.equal(flag(c.args, "--agent-token-file"), "/etc/hasan/agent/token");
  assert.equal(pod.spec.volumes.find((v) => v.name === "chap")?.secret?.secretName, "data-chap");
  assert.deepEqual(pod.spec.volumes.find((v) => v.name === "agent-token")?.secret, {
    secretName: "data-agent",
    items: [{ key: "token", path: "token" }],
  });
  assert.ok(c.volumeMounts.some((m) => m.name === "agent-token" && m.mountPath === "/etc/hasan/agent"));
  const pv = objs.find((o) => o.kind === "PersistentVolume") as unknown as {
    spec: { iscsi: Record<string, unknown> };
  };
  assert.equal(pv.spec.iscsi.chapAuthSession, true);
  assert.deepEqual(pv.spec.iscsi.secretRef, { name: "data-chap", namespace: "prod" });
  // The target pods' Role grants no Secret reads: they get their Secrets as volumes.
  const role = objs.find((o) => o.kind === "Role") as unknown as { rules: { resources: string[] }[] };
  assert.ok(role.rules.every((r) => !r.resources.includes("secrets")));
  assert.equal(objs.filter((o) => o.kind === "Secret").length, 0, "created once, never applied");
});

test("with chap: Disabled the pods start without CHAP flags and the PV has no secretRef; the agent token stays", () => {
  const objs = desiredChildren(
    target({ auth: { chap: "Disabled" }, export: { persistentVolume: {} } }),
    observed,
    defaults,
  );
  const c = podOf(objs)!.spec.containers[0]!;
  assert.equal(flag(c.args, "--chap-user"), undefined);
  assert.equal(flag(c.args, "--agent-token-file"), "/etc/hasan/agent/token");
  const pv = objs.find((o) => o.kind === "PersistentVolume") as unknown as {
    spec: { iscsi: Record<string, unknown> };
  };
  assert.equal(pv.spec.iscsi.secretRef, undefined);
  assert.equal(pv.spec.iscsi.chapAuthSession, undefined);
  assert.equal(chapSecretName(target({ auth: { chap: "Disabled" } })), undefined);
});

test("AuthenticationRequired: True naming the Secret; False with reason ChapDisabled, and one Warning Event on the change", () => {
  const nodes = [node("a", { state: "Working" }), node("b", { state: "Working" })] as [
    ReturnType<typeof node>,
    ReturnType<typeof node>,
  ];
  const cond = (auth: ReturnType<typeof authStatus>) =>
    conditionsFrom({ generation: 1, nodes, auth }).conditions.find(
      (c) => c.type === "AuthenticationRequired",
    )!;
  const on = cond(authStatus(target()));
  assert.equal(on.status, "True");
  assert.equal(on.reason, "ChapGenerated");
  assert.match(on.message, /Secret data-chap, generated once/);
  assert.equal(cond(authStatus(target({ auth: { chapSecretRef: { name: "m" } } }))).reason, "ChapSecret");
  const off = cond(authStatus(target({ auth: { chap: "Disabled" } })));
  assert.equal(off.status, "False");
  assert.equal(off.reason, "ChapDisabled");
  assert.match(off.message, /logs in without credentials/);
  const at = new Date("2026-01-01T00:00:00Z");
  const stampedOn = stampConditions([on], undefined, 1, at);
  const stampedOff = stampConditions([off], stampedOn, 2, at);
  assert.deepEqual(authDisabledEvent(stampedOn, stampedOff), {
    reason: "ChapDisabled",
    message: off.message,
  });
  assert.deepEqual(authDisabledEvent(undefined, stampedOff)?.reason, "ChapDisabled", "a new target too");
  assert.equal(authDisabledEvent(stampedOff, stampedOff), undefined, "not again while it stays off");
  assert.equal(authDisabledEvent(undefined, stampedOn), undefined);
  assert.equal(
    conditionsFrom({ generation: 1, nodes }).conditions.find((c) => c.type === "AuthenticationRequired"),
    undefined,
    "unknown without a readable spec",
  );
});

test("the operator sends the pair's token, caches it by target uid and reads the Secret again when the agent refuses it", async () => {
  let current = "a".repeat(64);
  const seen: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.setHeader("content-type", "application/json");
    if (req.headers.authorization !== `Bearer ${current}`) {
      res.statusCode = req.headers.authorization ? 403 : 401;
      res.end(JSON.stringify({ error: "no" }));
      return;
    }
    res.end(JSON.stringify(agent("a", { state: "Working" })));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let secretReads = 0;
  let stored = current;
  const client = {
    getOrUndefined: (_v: string, _k: string, _ns: string, name: string) => {
      assert.equal(name, "data-agent");
      secretReads++;
      return Promise.resolve({ data: { token: Buffer.from(`${stored}\n`).toString("base64") } });
    },
  } as unknown as KubeClient;
  try {
    const tokens = new AgentTokens(client);
    const agents = new AgentStatusCache();
    const owner = target().metadata;
    const r1 = await tokens.readStatus(agents, owner, url, 0);
    assert.equal(r1.ok, true);
    const r2 = await tokens.readStatus(agents, owner, url, 0);
    assert.equal(r2.ok, true);
    assert.equal(secretReads, 1, "cached by uid");
    // The Secret was replaced (deleted, generated again) and the pods restarted with the new token.
    current = stored = "b".repeat(64);
    const r3 = await tokens.readStatus(agents, owner, url, 0);
    assert.equal(r3.ok, true, "re-read after 403 and retried");
    assert.equal(secretReads, 2);
    assert.deepEqual(seen.slice(-2), [`Bearer ${"a".repeat(64)}`, `Bearer ${"b".repeat(64)}`]);
    // A token the agent still refuses after a fresh read is reported, not retried in a loop.
    current = "c".repeat(64);
    const r4 = await tokens.readStatus(agents, owner, url, 0);
    assert.equal(r4.ok, false);
    assert.ok(!r4.ok && r4.authFailed);
    assert.match(!r4.ok ? r4.error : "", /403: the agent refused the pair's agent token/);
  } finally {
    server.close();
  }
});

test("a target whose pods an older operator made without CHAP is kept open (marked, ChapNotConfigured) instead of locking its initiators out; a new one, or one that asks, gets CHAP", () => {
  const oldPod = { spec: { containers: [{ name: "target", args: ["serve", "--peer-secret-file", "/x"] }] } };
  const newPod = {
    spec: {
      containers: [{ name: "target", args: ["serve", "--agent-token-file", "/etc/hasan/agent/token"] }],
    },
  };
  assert.equal(madeOpenBeforeChapDefault(target(), [oldPod, oldPod]), true, "pods of an older operator");
  assert.equal(madeOpenBeforeChapDefault(target(), []), false, "a new target has no pods yet");
  assert.equal(
    madeOpenBeforeChapDefault(target(), [newPod, oldPod]),
    false,
    "half-upgraded by this operator",
  );
  assert.equal(madeOpenBeforeChapDefault(target({ auth: { chap: "Required" } }), [oldPod]), false);
  assert.equal(
    madeOpenBeforeChapDefault(target({ auth: { chapSecretRef: { name: "m" } } }), [oldPod]),
    false,
  );

  const marked = target();
  marked.metadata.annotations = { "hasan.dev/chap-default": "Disabled" };
  assert.equal(madeOpenBeforeChapDefault(marked, [oldPod]), false, "marked once");
  assert.deepEqual(chapSource(marked), { kind: "disabled", keptOpen: true });
  assert.equal(chapSecretName(marked), undefined);
  assert.deepEqual(authStatus(marked), { mode: "Disabled", generated: false, keptOpen: true });
  const nodes = [node("a", { state: "Working" }), node("b", { state: "Working" })] as [
    ReturnType<typeof node>,
    ReturnType<typeof node>,
  ];
  const c = conditionsFrom({ generation: 1, nodes, auth: authStatus(marked) }).conditions.find(
    (x) => x.type === "AuthenticationRequired",
  )!;
  assert.equal(c.status, "False");
  assert.equal(c.reason, "ChapNotConfigured");
  assert.match(c.message, /spec\.auth\.chap: Required/);
  // the pods and the exported PV stay as the older operator made them: no CHAP
  const kids = desiredChildren(
    { ...marked, spec: { ...marked.spec, export: { persistentVolume: {} } } },
    observed,
    defaults,
  );
  const pv = kids.find((k) => k.kind === "PersistentVolume") as unknown as {
    spec: { iscsi: Record<string, unknown> };
  };
  assert.equal(pv.spec.iscsi.secretRef, undefined);
  const pod = kids.find((k) => k.kind === "Pod") as unknown as PodJson;
  assert.ok(!pod.spec.containers[0]!.args.includes("--chap-secret-file"));
  // asking for CHAP wins over the mark
  const asks = { ...marked, spec: { ...marked.spec, auth: { chap: "Required" as const } } };
  assert.equal(chapSource(asks).kind, "generated");
});
