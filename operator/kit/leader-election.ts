import type { Logger } from "../../target/log.js";
import { isConflict, isNotFound, type KubeClient } from "./kube-client.js";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** RFC 3339 with microseconds, as metav1.MicroTime expects. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Leader election on a coordination.k8s.io Lease, the client-go way: take the lease when it is free
 * or expired (expiry judged by this process's clock from when the record last changed, so clock skew
 * between replicas does not matter), renew it every retry period, and give up leadership when no
 * renewal succeeded within the renew deadline. Every write carries the resourceVersion it read, so
 * two candidates cannot both win.
 */
export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private observed: { record: string; at: number } | undefined;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly o: LeaderElectionOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns until elected, then renews; calls onLost once if leadership is lost. */
  run(onElected: () => void, onLost: () => void): void {
    const tick = async () => {
      if (this.stopped) return;
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn({ err }, "leader election: lease request failed");
      }
      if (this.stopped) return;
      if (ok) {
        this.lastRenew = this.now();
        if (!this.leading) {
          this.leading = true;
          this.log.info(
            { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity },
            "became leader",
          );
          onElected();
        }
      } else if (this.leading && this.now() - this.lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.log.error({ identity: this.o.identity }, "leadership lost: no renewal within the deadline");
        onLost();
        return;
      }
      this.timer = setTimeout(() => void tick(), this.retryMs);
    };
    void tick();
  }

  /** One attempt; true when this process holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date(this.now());
    const { namespace, name, identity } = this.o;
    const spec = (transitions: number, acquireTime: string) => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime,
      renewTime: microTime(now),
      leaseTransitions: transitions,
    });
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>("coordination.k8s.io/v1", "Lease", namespace, name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      try {
        await this.client.create<Lease>({
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: spec(0, microTime(now)),
        });
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    const s = lease.spec ?? {};
    const record = JSON.stringify([s.holderIdentity, s.renewTime, s.leaseDurationSeconds]);
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: this.now() };
    const held = !!s.holderIdentity && s.holderIdentity !== identity;
    const durationMs = (s.leaseDurationSeconds ?? Math.ceil(this.leaseMs / 1000)) * 1000;
    if (held && this.now() < this.observed.at + durationMs) return false;
    const mine = s.holderIdentity === identity;
    const transitions = (s.leaseTransitions ?? 0) + (mine ? 0 : 1);
    try {
      await this.client.replace<Lease>({
        ...lease,
        spec: spec(transitions, mine && s.acquireTime ? s.acquireTime : microTime(now)),
      });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Stops campaigning; a leader hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.get<Lease>(
        "coordination.k8s.io/v1",
        "Lease",
        this.o.namespace,
        this.o.name,
      );
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.client.replace<Lease>({
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: null,
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
    } catch (err) {
      this.log.warn({ err }, "could not release the leader lease");
    }
  }
}
