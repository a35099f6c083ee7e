import type * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { HASanTargetSpecSchema, type HASanTargetSpec } from "../api/spec.js";
import { API_VERSION, KIND } from "../api/target.js";

export interface HASanTargetArgs {
  /** Object name; Pulumi's auto-name (name plus a suffix) when unset. */
  name?: pulumi.Input<string>;
  namespace: pulumi.Input<string>;
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  annotations?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** The pair's spec, typed and checked by the same zod schema the CRD is generated from. */
  spec: HASanTargetSpec;
}

export class HASanTargetSpecError extends Error {
  override name = "HASanTargetSpecError";
}

/** A HASanTarget (hasan.dev/v1alpha1): one HA iSCSI target pair, reconciled by the operator. */
export class HASanTarget extends k8s.apiextensions.CustomResource {
  constructor(name: string, args: HASanTargetArgs, opts?: pulumi.CustomResourceOptions) {
    const parsed = HASanTargetSpecSchema.safeParse(args.spec);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `  spec.${i.path.join(".")}: ${i.message}`);
      throw new HASanTargetSpecError(`invalid HASanTarget ${name}:\n${issues.join("\n")}`);
    }
    super(
      name,
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: {
          name: args.name,
          namespace: args.namespace,
          labels: args.labels,
          annotations: args.annotations,
        },
        // As written (validated above): the API server applies the CRD defaults.
        spec: args.spec,
      },
      opts,
    );
  }
}
