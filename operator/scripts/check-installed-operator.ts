/**
 * operator-up.sh's guard: `node check-installed-operator.js DEPLOYMENTS.json LEASES.json OWN_LEASE`
 * with the output of `kubectl get deployments -A -l app.kubernetes.io/name=hasan-operator -o json`
 * and `kubectl get leases -A -o json`. Exits 1 with the reasons when an installed operator runs.
 */
import { readFileSync } from "node:fs";
import { installedOperatorConflicts, type DeploymentView, type LeaseView } from "./installed-operator.js";

const [deploymentsFile, leasesFile, own] = process.argv.slice(2);
if (!deploymentsFile || !leasesFile || !own) {
  console.error("usage: check-installed-operator DEPLOYMENTS.json LEASES.json NAMESPACE/LEASE");
  process.exit(2);
}
const items = <T>(file: string): T[] =>
  (JSON.parse(readFileSync(file, "utf8")) as { items?: T[] }).items ?? [];
const conflicts = installedOperatorConflicts(
  items<DeploymentView>(deploymentsFile),
  items<LeaseView>(leasesFile),
  own,
  new Date(),
);
if (conflicts.length > 0) {
  console.error("operator-up refused: an operator is already running in this cluster.");
  for (const c of conflicts) console.error(`  - ${c}`);
  console.error(
    "Two operators under different leader-election Leases would both reconcile the same HASanTargets " +
      "(each writing its own view of the pairs' children). Use the installed operator, or stop it first.",
  );
  process.exit(1);
}
