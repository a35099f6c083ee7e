import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { ChartValuesSchema, type ChartValues } from "./chart-values.js";

/** charts/hasan next to this module, from both operator/pulumi/ (source) and dist/operator/pulumi/ (built). */
export function defaultChartPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${path.sep}dist${path.sep}`)
    ? path.resolve(here, "../../..")
    : path.resolve(here, "../..");
  return path.join(root, "charts/hasan");
}

export interface HasanOperatorArgs {
  /** Namespace of the operator (created when missing). Default hasan-system. */
  namespace?: string;
  /** Helm release name. Default hasan. */
  releaseName?: string;
  /** Chart values; checked against the chart's schema before anything is declared. */
  values?: ChartValues;
  /** A chart directory or packaged chart; the chart in this repository by default. */
  chart?: string;
  /** Seconds Helm waits for the operator to become ready. Default 300. */
  timeoutSeconds?: number;
}

export class HasanOperatorValuesError extends Error {
  override name = "HasanOperatorValuesError";
}

/**
 * The hasan operator installed from its Helm chart as a Helm release (helm.v3.Release: the
 * Kubernetes provider runs Helm itself, so `lookup` keeps the webhook certificate across updates
 * and `helm list` shows the release).
 */
export class HasanOperator extends pulumi.ComponentResource {
  readonly release: k8s.helm.v3.Release;
  /** Namespace the operator runs in. */
  readonly namespace: pulumi.Output<string>;
  /** Release status as Helm reports it (e.g. deployed). */
  readonly status: pulumi.Output<string>;

  constructor(name: string, args: HasanOperatorArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    // Checked before the component registers, so bad values declare nothing.
    const parsed = ChartValuesSchema.safeParse(args.values ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `  values.${i.path.join(".")}: ${i.message}`);
      throw new HasanOperatorValuesError(`invalid hasan chart values:\n${issues.join("\n")}`);
    }
    super("hasan:index:HasanOperator", name, {}, opts);
    const namespace = args.namespace ?? "hasan-system";
    this.release = new k8s.helm.v3.Release(
      name,
      {
        name: args.releaseName ?? "hasan",
        chart: args.chart ?? defaultChartPath(),
        namespace,
        createNamespace: true,
        values: parsed.data,
        timeout: args.timeoutSeconds ?? 300,
        // Roll back a failed upgrade instead of leaving a half-updated operator.
        atomic: true,
        cleanupOnFail: true,
      },
      { parent: this },
    );
    this.namespace = this.release.status.apply((s) => s.namespace ?? namespace);
    this.status = this.release.status.apply((s) => s.status);
    this.registerOutputs({ namespace: this.namespace, status: this.status });
  }
}
