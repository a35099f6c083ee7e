/** The chart rendered with `helm template` (helm built by the local cluster's tools), as objects. */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml } from "@kubernetes/client-node";
import { helmBinary, templateKubeVersion } from "../../hack/gen-manifests.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CHART_RELEASE = "hasan";
export const CHART_NAMESPACE = "hasan-system";
export const CHART_DIR = path.join(repoRoot, "charts/hasan");

/** Every object `helm template` renders with `--set` values. */
export function renderChart(set: string[] = []): unknown[] {
  const out = execFileSync(
    helmBinary(),
    [
      "template",
      CHART_RELEASE,
      CHART_DIR,
      "--namespace",
      CHART_NAMESPACE,
      "--kube-version",
      templateKubeVersion(),
      ...set.flatMap((s) => ["--set", s]),
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return loadAllYaml(out) as unknown[];
}
