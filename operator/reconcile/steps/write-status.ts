import type { Logger } from "../../../target/log.js";
import type { HASanTargetStatus } from "../../api/status.js";
import { API_VERSION, KIND, type HASanTarget } from "../../api/target.js";
import { isNotFound } from "../../kit/kube-client.js";
import type { ObservedPair } from "../../pair/observed.js";
import {
  authDisabledEvent,
  readyProblemEvent,
  conditionsFrom,
  nodeTransitions,
  stampConditions,
  statusEqual,
} from "../../status/conditions.js";
import { recordEvent } from "../../status/events.js";
import { authStatus } from "../auth.js";
import { iqnOf, persistentVolumeName } from "../desired-children.js";
import type { RawTarget, ReconcileContext, Step } from "../pass.js";
import { peerSecretSource } from "../peer-secret.js";

/** Writes what the pass saw and did into the status, and the node states into /metrics. Needs: everything. */
export const writeStatus: Step = async (pass, c) => {
  const t = pass.target;
  const secret = peerSecretSource(t);
  const pair: ObservedPair = {
    generation: t.metadata.generation ?? 0,
    nodes: pass.nodes,
    specError: pass.specError,
    applyError: pass.applyError,
    peerSecret: { name: secret.name, generated: secret.kind === "generated" },
  };
  if (t.spec.splitBrainResolution) pair.splitBrainDiscard = t.spec.splitBrainResolution.discard;
  pair.auth = authStatus(t);
  if (pass.capacity) pair.capacity = pass.capacity;
  const pvOurs = pass.pvSync !== undefined && pass.pvSync.outcome !== "foreign";
  await writeTargetStatus(c, t, pair, pvOurs ? persistentVolumeName(t) : undefined, pass.log, pass.verify);
  c.metrics.setNodeStates(`${t.metadata.namespace}/${t.metadata.name}`, pass.facts.states);
};

/** The pair of a target whose spec could not be read: nothing known but why. */
export function unknownPair(raw: RawTarget, specError: string): ObservedPair {
  return {
    generation: raw.metadata.generation ?? 0,
    nodes: [{ name: "a" }, { name: "b" }],
    specError,
  };
}

/** One status write per pass, and only when something other than transition times changed. */
export async function writeTargetStatus(
  c: ReconcileContext,
  t: HASanTarget,
  pair: ObservedPair,
  pvName: string | undefined,
  log: Logger,
  verify?: HASanTargetStatus["verify"],
): Promise<void> {
  const previous = t.status;
  const computed = conditionsFrom(pair, previous?.conditions);
  const portals = pair.nodes.map((n) => n.portal).filter((p): p is string => !!p);
  const next: HASanTargetStatus = {
    observedGeneration: pair.generation,
    phase: computed.phase,
    conditions: stampConditions(computed.conditions, previous?.conditions, pair.generation, new Date()),
    nodes: computed.nodes,
  };
  if (t.spec && typeof t.spec === "object" && "capacity" in t.spec) next.iqn = iqnOf(t);
  if (portals.length) next.portals = portals;
  if (pvName) next.persistentVolumeName = pvName;
  if (computed.syncProgress) next.syncProgress = computed.syncProgress;
  if (pair.auth) next.auth = pair.auth;
  if (verify) next.verify = verify;
  c.metrics.setPhase(`${t.metadata.namespace}/${t.metadata.name}`, computed.phase);
  if (statusEqual(previous, next)) return;
  const patch: Record<string, unknown> = { ...next };
  for (const k of Object.keys(previous ?? {})) if (!(k in next)) patch[k] = null;
  // A merge patch merges nested objects: a member that went away must be removed explicitly.
  if (next.auth && previous?.auth)
    patch.auth = { ...next.auth, chapSecretName: next.auth.chapSecretName ?? null };
  if (next.verify && previous?.verify) {
    const gone = Object.keys(previous.verify).filter((k) => !(k in next.verify!));
    patch.verify = { ...Object.fromEntries(gone.map((k) => [k, null])), ...next.verify };
  }
  try {
    await c.client.mergePatch(
      API_VERSION,
      KIND,
      t.metadata.namespace,
      t.metadata.name,
      { status: patch },
      "status",
    );
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  c.metrics.statusWrites.inc();
  const identity = c.options.identity;
  const authEvent = authDisabledEvent(previous?.conditions, next.conditions ?? []);
  if (authEvent) {
    log.warn({ reason: authEvent.reason }, authEvent.message);
    await recordEvent(c.client, t, "Warning", authEvent.reason, authEvent.message, identity).catch(
      (e: unknown) => log.warn({ err: e }, "could not record event"),
    );
  }
  const problem = readyProblemEvent(previous?.conditions, next.conditions ?? []);
  if (problem) {
    log.warn({ reason: problem.reason }, problem.message);
    await recordEvent(c.client, t, "Warning", problem.reason, problem.message, identity).catch((e: unknown) =>
      log.warn({ err: e }, "could not record event"),
    );
  }
  for (const tr of nodeTransitions(previous?.nodes, next.nodes ?? [])) {
    const warn = ["Failed", "SplitBrain", "Unknown"].includes(tr.to);
    const message = `node ${tr.node}: ${tr.from} → ${tr.to}${tr.message ? ` (${tr.message})` : ""}`;
    log.info({ node: tr.node, from: tr.from, to: tr.to }, "node state changed");
    try {
      await recordEvent(c.client, t, warn ? "Warning" : "Normal", "NodeStateChanged", message, identity);
    } catch (e) {
      log.warn({ err: e }, "could not record event");
    }
  }
}
