/**
 * Whether an operator is already installed in the cluster, for `make operator-up`, which runs
 * a second operator from the checkout as a host process. That one elects its leader on a Lease
 * of its own, so next to the chart's operator both would lead at once and reconcile the same
 * HASanTargets from two builds. operator-up refuses instead (operator-up.sh).
 */

export const OPERATOR_LABEL = "app.kubernetes.io/name=hasan-operator";
/** The chart's default leader-election Lease name (values.yaml operator.leaderElection.id). */
export const CHART_LEASE_ID = "hasan-operator";
/** A Lease renewed within its duration plus this is taken as held. */
const LEASE_SLACK_SECONDS = 15;

export interface DeploymentView {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    template?: { spec?: { containers?: { args?: string[] }[] } };
  };
  status?: { replicas?: number };
}

export interface LeaseView {
  metadata: { name: string; namespace: string };
  spec?: { holderIdentity?: string | null; renewTime?: string | null; leaseDurationSeconds?: number | null };
}

/** The value of `--flag=value` or `--flag value` in args. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    if (a === flag) return args[i + 1];
  }
  return undefined;
}

/** The leader-election Leases an installed operator Deployment uses: namespace/name. */
export function leaseOf(d: DeploymentView): string {
  const args = (d.spec?.template?.spec?.containers ?? []).flatMap((c) => c.args ?? []);
  const ns = flagValue(args, "--leader-election-namespace") ?? d.metadata.namespace;
  return `${ns}/${flagValue(args, "--leader-election-id") ?? CHART_LEASE_ID}`;
}

/**
 * Why operator-up must not start: each installed operator Deployment that runs (replicas > 0),
 * and each installed operator's leader-election Lease (or a Lease named like the chart's
 * default) that someone else renewed recently. `own` is operator-up's Lease (namespace/name).
 * Empty when the way is clear.
 */
export function installedOperatorConflicts(
  deployments: readonly DeploymentView[],
  leases: readonly LeaseView[],
  own: string,
  now: Date,
): string[] {
  const out: string[] = [];
  for (const d of deployments) {
    const replicas = Math.max(d.spec?.replicas ?? 1, d.status?.replicas ?? 0);
    if (replicas === 0) continue;
    const { namespace, name } = d.metadata;
    out.push(
      `the operator installed in the cluster runs as Deployment ${namespace}/${name} ` +
        `(${replicas} replica${replicas === 1 ? "" : "s"}, leader Lease ${leaseOf(d)}); stop it first: ` +
        `kubectl -n ${namespace} scale deployment ${name} --replicas=0 (or helm -n ${namespace} uninstall ` +
        `the release), and scale it back up after operator-down`,
    );
  }
  const installed = new Set(deployments.map(leaseOf));
  for (const l of leases) {
    const key = `${l.metadata.namespace}/${l.metadata.name}`;
    if (key === own || !(installed.has(key) || l.metadata.name === CHART_LEASE_ID)) continue;
    const holder = l.spec?.holderIdentity;
    const renewed = l.spec?.renewTime ? Date.parse(l.spec.renewTime) : NaN;
    if (!holder || Number.isNaN(renewed)) continue;
    const age = (now.getTime() - renewed) / 1000;
    if (age > (l.spec?.leaseDurationSeconds ?? 15) + LEASE_SLACK_SECONDS) continue;
    out.push(
      `leader-election Lease ${key} is held by ${holder} (renewed ${Math.max(0, Math.round(age))}s ago): ` +
        `another operator leads there; stop it, or wait until its Lease expires`,
    );
  }
  return out;
}
