/**
 * A witness kept in a Kubernetes coordination.k8s.io/v1 Lease (one per pair). The record
 * lives in the Lease's holderIdentity ("a", "b" or "pair") and an annotation with the
 * generation; every change is a replace carrying the resourceVersion that was read, so of
 * two nodes racing only one succeeds (the other gets 409 Conflict and loses). The kubeconfig
 * comes from KUBECONFIG or the pod's service account.
 */
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import {
  evaluateClaim,
  evaluateConfirm,
  type ClaimRequest,
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

export function recordFromLease(lease: k8s.V1Lease): WitnessRecord | null {
  const generation = lease.metadata?.annotations?.[GENERATION_ANNOTATION];
  const who = lease.spec?.holderIdentity;
  if (!generation || (who !== "a" && who !== "b" && who !== "pair")) return null;
  const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  return { holder: who === "pair" ? null : who, generation, renewedAt: renewed };
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

  async confirmPair(generation: string): Promise<boolean> {
    return this.compareAndSwap((r) => evaluateConfirm(r, generation, Date.now()));
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

  private async compareAndSwap(
    next: (r: WitnessRecord | null) => WitnessRecord | "keep" | null,
  ): Promise<boolean> {
    const lease = await this.read();
    const updated = next(lease ? recordFromLease(lease) : null);
    if (!updated) return false;
    if (updated === "keep") return true;
    const body: k8s.V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...(lease?.metadata ?? {}),
        name: this.name,
        namespace: this.namespace,
        annotations: { ...(lease?.metadata?.annotations ?? {}), [GENERATION_ANNOTATION]: updated.generation },
      },
      spec: {
        ...(lease?.spec ?? {}),
        holderIdentity: updated.holder ?? "pair",
        leaseDurationSeconds: LEASE_SECONDS,
        // MicroTime fields: the API server wants six fractional digits.
        renewTime: new k8s.V1MicroTime(updated.renewedAt),
        acquireTime: new k8s.V1MicroTime(
          lease?.spec?.holderIdentity === (updated.holder ?? "pair") && lease.spec.acquireTime
            ? new Date(lease.spec.acquireTime).getTime()
            : updated.renewedAt,
        ),
      },
    };
    try {
      if (lease) {
        await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
      } else {
        await this.api.createNamespacedLease({ namespace: this.namespace, body });
      }
      return true;
    } catch (e) {
      const code = statusCode(e);
      if (code === 409) {
        this.logger.info(
          { lease: `${this.namespace}/${this.name}` },
          "witness lease changed concurrently; claim lost",
        );
        return false;
      }
      throw e;
    }
  }
}
