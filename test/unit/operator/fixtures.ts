import { KubeApiError, type KubeClient } from "../../../operator/kit/kube-client.js";
import type { TargetStatus, NodeState } from "../../../target/agent/status-schema.js";
import type { HASanTarget } from "../../../operator/api/target.js";
import type { HASanTargetSpec } from "../../../operator/api/spec.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";

export function target(spec: Partial<HASanTargetSpec> = {}, name = "data"): HASanTarget {
  return {
    apiVersion: "hasan.dev/v1alpha1",
    kind: "HASanTarget",
    metadata: { name, namespace: "prod", uid: "0b7c6f2e-1a2b-4c3d-8e9f-001122334455", generation: 3 },
    spec: { capacity: "1Gi", ...spec },
  };
}

export interface AgentOpts {
  state: NodeState;
  serving?: boolean;
  outOfSyncBytes?: number;
  lastHeardMs?: number | null;
  resync?: {
    doneBytes: number;
    totalBytes: number;
    bytesPerSecond: number;
    etaSeconds: number | null;
  } | null;
}

export function agent(node: "a" | "b", o: AgentOpts): TargetStatus {
  return {
    iqn: "iqn.2024-01.dev.hasan:prod.data",
    serial: "0b7c6f2e1a2b4c3d8e9f001122334455",
    sizeBytes: 1 << 30,
    blockSize: 512,
    portal: "10.214.0.10:3260",
    uptimeSeconds: 100,
    state: o.state,
    sessions: [],
    counters: {
      readCommands: 0,
      writeCommands: 0,
      otherCommands: 0,
      readBytes: 0,
      writtenBytes: 0,
      errors: 0,
    },
    replication: {
      node,
      state: o.state,
      peer: {
        address: "10.214.0.11:3261",
        connected: o.state === "Working",
        lastHeardMs: o.lastHeardMs ?? 100,
      },
      generation: "00c0ffee",
      outOfSyncBytes: o.outOfSyncBytes ?? 0,
      resync: o.resync ?? null,
      serving: o.serving ?? ["Working", "Failed", "Synchronizing"].includes(o.state),
      stats: { resyncedBytes: 0, mirroredWrites: 0 },
      message: `${o.state}`,
    },
  };
}

export function node(name: "a" | "b", o?: AgentOpts, pod: Partial<ObservedNode["pod"]> = {}): ObservedNode {
  const n: ObservedNode = {
    name,
    pod: {
      name: `data-${name}`,
      nodeName: `node-${name}`,
      phase: "Running",
      ready: true,
      terminating: false,
      ...pod,
    },
    portal: `10.214.0.${name === "a" ? 10 : 11}:3260`,
  };
  if (o) n.agent = agent(name, o);
  else n.agentError = "ECONNREFUSED";
  return n;
}

/**
 * A KubeClient stand-in for created-once Secrets (get and create, never apply, patch or replace)
 * that records calls;
 * the API server itself is exercised by the integration tests.
 */
export function createdOnceSecretsClient(
  secrets: Map<string, { data: Record<string, string> }>,
  onCreate?: () => void,
) {
  const calls: string[] = [];
  const client = {
    getOrUndefined: (_v: string, _k: string, _ns: string, name: string) => {
      calls.push(`get ${name}`);
      return Promise.resolve(secrets.get(name));
    },
    create: (obj: { metadata: { name: string }; data: Record<string, string> }) => {
      calls.push(`create ${obj.metadata.name}`);
      onCreate?.();
      if (secrets.has(obj.metadata.name))
        return Promise.reject(new KubeApiError(409, "AlreadyExists", "already exists", {}));
      secrets.set(obj.metadata.name, { data: obj.data });
      return Promise.resolve(obj);
    },
    apply: () => Promise.reject(new Error("a created-once Secret is never applied")),
    mergePatch: () => Promise.reject(new Error("a created-once Secret is never patched")),
    replace: () => Promise.reject(new Error("a created-once Secret is never replaced")),
  };
  return { client: client as unknown as KubeClient, calls };
}
