/**
 * Secrets the operator generates for a target exactly once and never writes again: the peer
 * link's secret (peer-secret.ts), the CHAP credentials (chap-secret.ts) and the agent token
 * (agent-token-secret.ts) are instances of one `CreatedOnceSecret`.
 *
 * Each is made with a create call: the API server lets one create win, so two operator instances
 * racing on a new target end with one value (the loser's create answers 409 and it reads what
 * exists). From then on the Secret in the cluster is the only truth: it is never applied, patched
 * or cached by value, so neither a reconcile pass, a restart nor a second operator can give it a
 * new value that a recreated pod (or a client) would read while another still holds the old one.
 * A Secret that exists without usable values is reported, never overwritten. Prune keeps these
 * Secrets while they are wanted (`createdOnceChildren`); they go with the target (owner reference).
 */
import type { HASanTarget } from "../api/target.js";
import { isConflict, type KubeClient } from "../kit/kube-client.js";
import { ownerReference, type KubeObject } from "./desired-children.js";
import { FIELD_MANAGER, commonLabels } from "../pair/names.js";

/** What the operator reads of a Secret. */
export interface SecretView {
  metadata?: { name?: string; uid?: string };
  data?: Record<string, string>;
}

/** One kind of Secret the operator generates once per target. */
export interface CreatedOnceSecret {
  /** for messages and logs, e.g. "peer Secret" */
  what: string;
  /** the Secret's name when the operator generates it for this target; undefined when it does not */
  generatedName(t: HASanTarget): string | undefined;
  /** the Secret's type */
  type: string;
  /** fresh values by key, as plain text; drawn only when the Secret is created */
  fresh(t: HASanTarget): Record<string, string>;
  /** why an existing Secret's values cannot be used as they are (undefined: usable) */
  problem(t: HASanTarget, values: Record<string, string>): string | undefined;
  /** what a user can do about a refused Secret, appended to the error */
  remedy: string;
}

export type CreatedOnceDecision =
  /** not generated for this target (the user's Secret, or none wanted) */
  | { action: "none" }
  /** the generated Secret exists with usable values: used as it is, never rewritten */
  | { action: "keep"; name: string }
  /** no generated Secret yet: create it (a create, not an apply: it fails if someone else was first) */
  | { action: "create"; name: string; object: KubeObject }
  /** the generated Secret exists without usable values: reported, not overwritten */
  | { action: "refuse"; name: string; error: string };

/** A Secret's data decoded to text. */
export function decodedData(data: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
  return out;
}

/** The generated Secret as created (once): owned by the target, with the target's labels. */
export function createdOnceObject(
  kind: CreatedOnceSecret,
  t: HASanTarget,
  name: string,
  values: Record<string, string>,
): KubeObject {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) data[k] = Buffer.from(v, "utf8").toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: t.metadata.namespace,
      labels: commonLabels(t.metadata),
      ownerReferences: [ownerReference(t)],
    },
    type: kind.type,
    data,
  };
}

/**
 * What to do about one generated Secret, given the live one (undefined: not found). A pure
 * decision: an existing value always wins over a new one.
 */
export function decideCreatedOnce(
  kind: CreatedOnceSecret,
  t: HASanTarget,
  live: SecretView | undefined,
  fresh: (t: HASanTarget) => Record<string, string> = (x) => kind.fresh(x),
): CreatedOnceDecision {
  const name = kind.generatedName(t);
  if (name === undefined) return { action: "none" };
  if (!live) return { action: "create", name, object: createdOnceObject(kind, t, name, fresh(t)) };
  const problem = kind.problem(t, decodedData(live.data));
  if (problem === undefined) return { action: "keep", name };
  return {
    action: "refuse",
    name,
    error: `${kind.what} ${name} ${problem}; the operator never overwrites a Secret it generated: ${kind.remedy}`,
  };
}

export interface EnsuredSecret {
  name: string;
  /** existing: found; created: by this call; lostRace: another creator won */
  outcome: "existing" | "created" | "lostRace";
}

/**
 * Makes sure a generated Secret exists without ever replacing a value: reads it, creates it when
 * missing, and on 409 AlreadyExists reads the winner's Secret instead. Undefined when the target
 * has no such generated Secret. Throws when the Secret cannot be used as it is (the reason is
 * meant for the target's status).
 */
export async function ensureCreatedOnce(
  client: KubeClient,
  kind: CreatedOnceSecret,
  t: HASanTarget,
  fresh?: (t: HASanTarget) => Record<string, string>,
): Promise<EnsuredSecret | undefined> {
  const name = kind.generatedName(t);
  if (name === undefined) return undefined;
  const get = () => client.getOrUndefined<SecretView>("v1", "Secret", t.metadata.namespace, name);
  const d = decideCreatedOnce(kind, t, await get(), fresh);
  if (d.action === "create") {
    try {
      await client.create(d.object, FIELD_MANAGER);
      return { name, outcome: "created" };
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    const again = decideCreatedOnce(kind, t, await get(), fresh);
    if (again.action === "keep") return { name, outcome: "lostRace" };
    if (again.action === "refuse") throw new Error(again.error);
    throw new Error(`${kind.what} ${name}: create conflicted, yet it is gone; retrying`);
  }
  if (d.action === "refuse") throw new Error(d.error);
  return { name, outcome: "existing" };
}

/** The generated Secrets a target has, as prune needs them (kept while wanted). */
export function createdOnceNames(t: HASanTarget, kinds: readonly CreatedOnceSecret[]): KubeObject[] {
  return kinds.flatMap((k) => {
    const name = k.generatedName(t);
    return name === undefined
      ? []
      : [{ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: t.metadata.namespace } }];
  });
}
