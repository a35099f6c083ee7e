/**
 * A witness kept in a Kubernetes coordination.k8s.io/v1 Lease (one per pair). The record
 * lives in the Lease's holderIdentity ("a" or "b" for a holder, "pair" for a pair record both
 * nodes confirmed, "pair:a" or "pair:b" for one confirmed by one node so far) and an
 * annotation with the generation; a Lease without them (as the operator creates it, or
 * recreates it after a deletion) holds no record; every change is a replace carrying the resourceVersion that was read, so of
 * two nodes racing only one succeeds (the other gets 409 Conflict and loses). The kubeconfig
 * comes from KUBECONFIG or the pod's service account.
 */
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import {
  evaluateClaim,
  evaluateConfirm,
  renewAloneBy,
  type ClaimRequest,
  type NodeName,
  type Witness,
  type WitnessRecord,
} from "./witness.js";

export const GENERATION_ANNOTATION = "hasan.dev/generation";
const LEASE_SECONDS = 15;

function statusCode(e: unknown): number | undefined {
  if (e instanceof k8s.ApiException) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

const IDENTITIES: Record<string, Pick<WitnessRecord, "holder" | "confirmedBy">> = {
  a: { holder: "a", confirmedBy: [] },
  b: { holder: "b", confirmedBy: [] },
  pair: { holder: null, confirmedBy: ["a", "b"] },
  "pair:a": { holder: null, confirmedBy: ["a"] },
  "pair:b": { holder: null, confirmedBy: ["b"] },
};

export function recordFromLease(lease: k8s.V1Lease): WitnessRecord | null {
  const generation = lease.metadata?.annotations?.[GENERATION_ANNOTATION];
  const who = IDENTITIES[lease.spec?.holderIdentity ?? ""];
  if (!generation || !who) return null;
  const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  return { ...who, generation, renewedAt: renewed };
}

export function identityOf(r: WitnessRecord): string {
  if (r.holder !== null) return r.holder;
  return r.confirmedBy.length >= 2 ? "pair" : `pair:${r.confirmedBy[0] ?? "a"}`;
}

export class LeaseWitness implements Witness {
  readonly kind = "lease" as const;

  private constructor(
    private readonly api: k8s.CoordinationV1Api,
    readonly namespace: string,
    readonly name: string,
    private readonly logger: Logger,
  ) {}

  static create(namespace: string, name: string, logger: Logger): LeaseWitness {
    const kc = new k8s.KubeConfig();
    if (process.env.KUBECONFIG) kc.loadFromFile(process.env.KUBECONFIG);
    else kc.loadFromCluster();
    return new LeaseWitness(kc.makeApiClient(k8s.CoordinationV1Api), namespace, name, logger);
  }

  async tryAcquire(claim: ClaimRequest): Promise<boolean> {
    return this.compareAndSwap((r) => evaluateClaim(r, claim, Date.now()));
  }

  async confirmPair(node: NodeName, generation: string): Promise<boolean> {
    return this.compareAndSwap((r) => evaluateConfirm(r, node, generation, Date.now()));
  }

  renewAlone(node: NodeName, generation: string): Promise<"ok" | "conflict"> {
    return renewAloneBy((next) => this.compareAndSwap(next), node, generation);
  }

  async release(): Promise<void> {}

  async holder(): Promise<WitnessRecord | null> {
    const lease = await this.read();
    return lease ? recordFromLease(lease) : null;
  }

  private async read(): Promise<k8s.V1Lease | null> {
    try {
      return await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (e) {
      if (statusCode(e) === 404) return null;
      throw e;
    }
  }

  /**
   * Reads the record, decides, and writes the decision with the resourceVersion that was read;
   * when someone else wrote in between (409, or 404 for a deletion) it reads and decides again,
   * so a claim racing the partner's loses on the partner's record, not on the race itself.
   */
  private async compareAndSwap(
    next: (r: WitnessRecord | null) => WitnessRecord | "keep" | null,
  ): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const lease = await this.read();
      const updated = next(lease ? recordFromLease(lease) : null);
      if (!updated) return false;
      if (updated === "keep") return true;
      try {
        if (lease) {
          await this.api.replaceNamespacedLease({
            name: this.name,
            namespace: this.namespace,
            body: leaseBody(this.namespace, this.name, lease, updated),
          });
        } else {
          await this.api.createNamespacedLease({
            namespace: this.namespace,
            body: leaseBody(this.namespace, this.name, null, updated),
          });
        }
        return true;
      } catch (e) {
        const code = statusCode(e);
        if ((code === 409 || code === 404) && attempt < 20) {
          this.logger.info(
            { lease: `${this.namespace}/${this.name}`, code },
            "witness lease changed concurrently; deciding again",
          );
          continue;
        }
        throw e;
      }
    }
  }
}

/** The Lease holding `updated`, replacing `lease` (null: a new one). */
function leaseBody(
  namespace: string,
  name: string,
  lease: k8s.V1Lease | null,
  updated: WitnessRecord,
): k8s.V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...(lease?.metadata ?? {}),
      name,
      namespace,
      annotations: { ...(lease?.metadata?.annotations ?? {}), [GENERATION_ANNOTATION]: updated.generation },
    },
    spec: {
      ...(lease?.spec ?? {}),
      holderIdentity: identityOf(updated),
      leaseDurationSeconds: LEASE_SECONDS,
      // MicroTime fields: the API server wants six fractional digits.
      renewTime: new k8s.V1MicroTime(updated.renewedAt),
      acquireTime: new k8s.V1MicroTime(
        lease?.spec?.holderIdentity === identityOf(updated) && lease.spec.acquireTime
          ? new Date(lease.spec.acquireTime).getTime()
          : updated.renewedAt,
      ),
    },
  };
}
